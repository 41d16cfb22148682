"""How one partition of a windowed table is laid out as ordered bytes (one RocksDB per partition,
one changelog partition with the same records).

Three key spaces, each a one-byte prefix:

* ``W`` — one record per window: ``W | key | start | end`` → ``[version, states]`` (orjson).
  A key's windows are one range scan, in ``(start, end)`` order (:func:`key_range`).
* ``T`` — the time index: ``T | due | kind | key | start | end`` → empty. One entry per window
  for the next thing stream time does to it: close it (:data:`CLOSE`, due at ``end + grace``)
  or delete it (:data:`EXPIRE`, due at ``end + grace + retention``). The windows stream time
  reaches are one range scan from the start of the index, in ``(due, kind, key, start, end)``
  order, without reading any window that is not due.
* ``M`` — the partition's own state: stream time and, for a partition fed by several inputs,
  their progress (:mod:`windows.progress`).

Encodings keep order: a key is its UTF-8 bytes with ``00`` escaped as ``00 FF`` and ended by
``00 00`` (so no key is a prefix of another, and keys sort as Python sorts the strings); a time
is 8 bytes big-endian of the epoch milliseconds plus 2**63 (negative times sort first).
"""

from __future__ import annotations

import struct
from typing import Any, NamedTuple

import orjson

from windows.keyed_state import WindowState

DATA = b"W"
INDEX = b"T"
META = b"M"
STREAM_TIME_KEY = META + b"stream-time"
INPUTS_KEY = META + b"inputs"

#: what stream time does to a window when its index entry is due
CLOSE, EXPIRE = 0, 1

_BIAS = 1 << 63
_END = b"\x00\x00"
_TIME_BYTES = 8
_TWO_TIMES = struct.Struct(">QQ")
_DUE_KIND = struct.Struct(">QB")


class Scheduled(NamedTuple):
    """An index entry: at stream time ``due`` (epoch ms), ``kind`` (:data:`CLOSE` or
    :data:`EXPIRE`) the window ``[start, end)`` of ``key``. Tuples sort as their keys do."""

    due: int
    kind: int
    key: str
    start: int
    end: int


def encode_time(ms: int) -> bytes:
    return (ms + _BIAS).to_bytes(_TIME_BYTES, "big")


def decode_time(raw: bytes) -> int:
    return int.from_bytes(raw, "big") - _BIAS


def _encode_key(key: str) -> bytes:
    return key.encode().replace(b"\x00", b"\x00\xff") + _END


def _decode_key(raw: bytes) -> str:
    return raw[: -len(_END)].replace(b"\x00\xff", b"\x00").decode()


def window_key(key: str, start: int, end: int) -> bytes:
    return DATA + _encode_key(key) + _TWO_TIMES.pack(start + _BIAS, end + _BIAS)


def parse_window_key(raw: bytes) -> tuple[str, int, int]:
    """``(key, start, end)`` of a ``W`` record's key."""
    return (
        _decode_key(raw[1 : -2 * _TIME_BYTES]),
        decode_time(raw[-2 * _TIME_BYTES : -_TIME_BYTES]),
        decode_time(raw[-_TIME_BYTES:]),
    )


def key_range(key: str) -> tuple[bytes, bytes]:
    """``[low, high)`` holding exactly the windows of ``key``."""
    prefix = DATA + _encode_key(key)
    return prefix, prefix + b"\xff" * (2 * _TIME_BYTES + 1)


def data_range() -> tuple[bytes, bytes]:
    """``[low, high)`` holding every window of the partition."""
    return DATA, DATA + b"\xff"


def encode_window(state: WindowState) -> bytes:
    return orjson.dumps([state.version, state.states])


def decode_window(start: int, end: int, raw: bytes) -> WindowState:
    version, states = orjson.loads(raw)
    return WindowState(start=start, end=end, states=states, version=version)


def index_key(entry: Scheduled) -> bytes:
    due, kind, key, start, end = entry
    head = _DUE_KIND.pack(due + _BIAS, kind)
    return INDEX + head + _encode_key(key) + _TWO_TIMES.pack(start + _BIAS, end + _BIAS)


def parse_index_key(raw: bytes) -> Scheduled:
    t = _TIME_BYTES
    return Scheduled(
        due=decode_time(raw[1 : 1 + t]),
        kind=raw[1 + t],
        key=_decode_key(raw[2 + t : -2 * t]),
        start=decode_time(raw[-2 * t : -t]),
        end=decode_time(raw[-t:]),
    )


def index_range(after: int | None, up_to: int) -> tuple[bytes, bytes]:
    """``[low, high)`` holding the index entries with ``after < due <= up_to`` (``after``
    ``None``: from the first)."""
    low = INDEX if after is None else INDEX + encode_time(after + 1)
    return low, INDEX + encode_time(up_to + 1)


def encode_meta(value: Any) -> bytes:
    return orjson.dumps(value)


def decode_meta(raw: bytes | None) -> Any:
    return None if raw is None else orjson.loads(raw)
