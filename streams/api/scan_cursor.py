"""The cursor of a table scan: where the next page starts.

A cursor is the last window a page returned, ``(key, start, end)`` (epoch ms), so the next page
is every window strictly after it in ``(key, start, end)`` order, wherever the partitions are
owned by then: it stays valid across a rebalance, a restart or a worker answering in place of
another. Its text is opaque to clients: URL-safe base64 (no padding) of a small JSON document,
version 1.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

import orjson

VERSION = 1


class BadCursor(ValueError):
    """A cursor that is not one this module wrote."""


@dataclass(frozen=True, order=True)
class ScanCursor:
    key: str
    start: int
    end: int

    def encode(self) -> str:
        body = orjson.dumps({"v": VERSION, "k": self.key, "s": self.start, "e": self.end})
        return base64.urlsafe_b64encode(body).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> ScanCursor:
        try:
            body = orjson.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
            if not isinstance(body, dict) or body.get("v") != VERSION:
                raise ValueError("not a version-1 cursor")
            key, start, end = body["k"], body["s"], body["e"]
            if not isinstance(key, str) or not all(
                isinstance(t, int) and not isinstance(t, bool) for t in (start, end)
            ):
                raise ValueError("bad fields")
        except (binascii.Error, ValueError, TypeError, KeyError, orjson.JSONDecodeError) as exc:
            raise BadCursor(f"not a scan cursor ({exc})") from None
        return cls(key, start, end)

    def as_tuple(self) -> tuple[str, int, int]:
        return (self.key, self.start, self.end)
