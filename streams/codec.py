"""Codecs registered with Faust: ``continust-json`` (orjson) for values and ``continust-str``
(UTF-8 text) for keys. Record keys are the key field's text, so the partition a key hashes to is
the same for the repartition topic, the table changelog and the HTTP router."""

from __future__ import annotations

from typing import Any

import orjson
from faust.serializers import codecs

JSON = "continust-json"
TEXT = "continust-str"


class OrjsonCodec(codecs.Codec):
    def _dumps(self, obj: Any) -> bytes:
        return orjson.dumps(obj)

    def _loads(self, s: bytes) -> Any:
        return orjson.loads(s)


class Utf8Codec(codecs.Codec):
    def _dumps(self, obj: Any) -> bytes:
        return obj.encode() if isinstance(obj, str) else bytes(obj)

    def _loads(self, s: bytes) -> str:
        return s.decode()


def register_codecs() -> None:
    """Make both codecs known to Faust by name; idempotent."""
    codecs.register(JSON, OrjsonCodec())
    codecs.register(TEXT, Utf8Codec())
