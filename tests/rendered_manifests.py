"""The Kubernetes objects ``kustomize build`` renders from a folder of k8s/, and the container
image's instructions from the Dockerfile, for the deployment tests (unit and integration).

kustomize is the project-local build (``make tools``: .tools/bin/kustomize), else one on the
PATH."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.tool_needs import require

ROOT = Path(__file__).resolve().parents[1]


def kustomize() -> str:
    local = ROOT / ".tools" / "bin" / "kustomize"
    found = str(local) if local.exists() else shutil.which("kustomize")
    require("kustomize", found is not None, "`make tools` (part of `make test`)")
    assert found is not None
    return found


@dataclass(frozen=True)
class Rendered:
    """Every object of one ``kustomize build``."""

    objects: list[dict[str, Any]]

    def all(self, kind: str) -> list[dict[str, Any]]:
        return [o for o in self.objects if o["kind"] == kind]

    def one(self, kind: str) -> dict[str, Any]:
        (found,) = self.all(kind)
        return found

    def pod_spec(self) -> dict[str, Any]:
        """The StatefulSet's pod template spec."""
        return dict(self.one("StatefulSet")["spec"]["template"]["spec"])

    def worker(self) -> dict[str, Any]:
        """The StatefulSet's worker container."""
        return dict(self.pod_spec()["containers"][0])


def render(folder: str) -> Rendered:
    """``kustomize build k8s/<folder>``; fails the test with kustomize's error."""
    done = subprocess.run(
        [kustomize(), "build", str(ROOT / "k8s" / folder)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return Rendered([o for o in yaml.safe_load_all(done.stdout) if o])


@dataclass(frozen=True)
class Instruction:
    """One Dockerfile instruction: ``FROM``, ``COPY``... and its text after the keyword."""

    keyword: str
    text: str

    def exec_form(self) -> list[str]:
        """The JSON array of an exec-form instruction (``CMD [...]``); fails on shell form."""
        value = json.loads(self.text)
        assert isinstance(value, list) and all(isinstance(v, str) for v in value), self.text
        return value


def dockerfile_stages(path: Path = ROOT / "Dockerfile") -> list[list[Instruction]]:
    """The Dockerfile's build stages, each its instructions from ``FROM`` on (continued lines
    joined, comments left out)."""
    lines: list[str] = []
    pending = ""
    for raw in path.read_text().splitlines():
        if raw.lstrip().startswith("#") or not raw.strip():
            continue
        pending += raw.rstrip().removesuffix("\\") + " " if raw.rstrip().endswith("\\") else raw
        if not raw.rstrip().endswith("\\"):
            lines.append(re.sub(r"\s+", " ", pending).strip())
            pending = ""
    stages: list[list[Instruction]] = []
    for line in lines:
        keyword, _, text = line.partition(" ")
        instruction = Instruction(keyword.upper(), text.strip())
        if instruction.keyword == "FROM":
            stages.append([])
        stages[-1].append(instruction)
    return stages
