"""The ``## `` sections of ``docs/benchmarks.md``, which several commands write: ``python -m
bench`` writes the whole file and keeps the sections it does not write itself; ``python -m
bench.shapes`` and ``python -m bench.restart_time`` replace their own section only.

A section is a line ``## title`` and everything up to the next such line outside a fenced code
block (or the end of the file). A new section goes before ``## Reproduce`` (the last section
``python -m bench`` writes), or at the end when there is none.
"""

from __future__ import annotations

from pathlib import Path

LAST = "Reproduce"
"""The section new ones are put in front of."""


def split_sections(text: str) -> tuple[str, list[tuple[str, str]]]:
    """The text before the first section, and each section as (title, its text including its
    heading line), in order."""
    head: list[str] = []
    sections: list[tuple[str, list[str]]] = []
    fenced = False
    for line in text.splitlines(keepends=True):
        if line.startswith("```"):
            fenced = not fenced
        if not fenced and line.startswith("## "):
            sections.append((line[3:].strip(), [line]))
        elif sections:
            sections[-1][1].append(line)
        else:
            head.append(line)
    return "".join(head), [(title, "".join(lines)) for title, lines in sections]


def _join(head: str, sections: list[tuple[str, str]]) -> str:
    parts = [head, *(text if text.endswith("\n") else text + "\n" for _, text in sections)]
    return "".join(parts)


def _insert(sections: list[tuple[str, str]], section: tuple[str, str]) -> None:
    titles = [title for title, _ in sections]
    at = titles.index(LAST) if LAST in titles else len(sections)
    sections.insert(at, section)


def _ensure_blank_line(text: str) -> str:
    return text if text.endswith("\n\n") else text.rstrip("\n") + "\n\n"


def replace_section(text: str, title: str, body: str) -> str:
    """``text`` with section ``title`` holding ``body`` (without its heading): in place of the
    section of that title if there is one, else before ``## Reproduce`` or at the end."""
    section = (title, _ensure_blank_line(f"## {title}\n\n{body.strip()}\n"))
    head, sections = split_sections(text)
    titles = [t for t, _ in sections]
    if title in titles:
        sections[titles.index(title)] = section
    else:
        if sections:
            last_title, last_text = sections[-1]
            sections[-1] = (last_title, _ensure_blank_line(last_text))
        elif head:
            head = _ensure_blank_line(head)
        _insert(sections, section)
    return _join(head, sections)


def keep_sections(new: str, old: str) -> str:
    """``new`` with the sections of ``old`` whose titles ``new`` does not have, in their order,
    before ``new``'s ``## Reproduce`` (or at its end)."""
    head, sections = split_sections(new)
    titles = {title for title, _ in sections}
    for title, text in split_sections(old)[1]:
        if title not in titles:
            _insert(sections, (title, _ensure_blank_line(text)))
    return _join(head, sections)


def write_section(path: Path, title: str, body: str) -> None:
    """Replace (or add) section ``title`` of the file at ``path`` (created if missing)."""
    old = path.read_text() if path.exists() else "# Benchmarks\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(replace_section(old, title, body))
