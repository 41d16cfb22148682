"""How one partition of a windowed table is laid out as ordered bytes (one RocksDB per partition,
one changelog partition with the same records).

Three key spaces, each a one-byte prefix:

* ``W`` — one record per window: ``W | key | start | end`` → ``[version, states]`` (orjson),
  with a third item, the cause of its last change, when the caller gave one
  (:attr:`~windows.keyed_state.WindowState.cause`; a record without it reads with no cause).
  A key's windows are one range scan, in ``(start, end)`` order (:func:`key_range`). Session
  tables order a key's sessions by end: ``W | key | end | start``, so the sessions an event
  at ``t`` can merge with (those ending after ``t``) are one range scan that skips the earlier
  ones.
* ``T`` — the time index: ``T | due | key | start | end`` → empty, one entry per window, due
  at the stream time that closes it (``end + grace``), from its creation until stream time
  deletes it (``due + retention``). The windows a move of stream time closes, and those it
  deletes, are each one range scan of the index, in ``(due, key, start, end)`` order, without
  reading any window that is not due.
* ``O`` — overdue closes: the same entry for a window created when the partition's stream time
  had already passed its close (an event judged by its own input's lagging progress,
  :mod:`windows.progress`); it closes at the next move of stream time.
* ``M`` — the partition's own state: stream time and, for a partition fed by several inputs,
  their progress (:mod:`windows.progress`); and its *processed offsets*: per input topic
  partition (``"topic:partition"``), the largest offset of that input the partition has
  processed (``M offsets`` → a JSON object; absent in a store written before it existed, which
  reads as nothing processed yet); and the count of windows created and not closed yet
  (``M open-windows`` → an integer; absent: 0).

Encodings keep order: a key is its UTF-8 bytes with ``00`` escaped as ``00 FF`` and ended by
``00 00`` (so no key is a prefix of another, and keys sort as Python sorts the strings); a time
is 8 bytes big-endian of the epoch milliseconds plus 2**63 (negative times sort first).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

import orjson

from windows.keyed_state import WindowState

DATA = b"W"
INDEX = b"T"
OVERDUE = b"O"
META = b"M"
STREAM_TIME_KEY = META + b"stream-time"
INPUTS_KEY = META + b"inputs"
OFFSETS_KEY = META + b"offsets"
#: windows created and not closed yet (an integer; absent in a store written before it existed)
OPEN_WINDOWS_KEY = META + b"open-windows"

_BIAS = 1 << 63
_END = b"\x00\x00"
_TIME_BYTES = 8
_TWO_TIMES = struct.Struct(">QQ")
_DUE = struct.Struct(">Q")


#: a due time after every other: "no entry is due later"
NO_DUE = 1 << 63


class Scheduled(NamedTuple):
    """An index entry: the window ``[start, end)`` of ``key`` closes at stream time ``due``
    (epoch ms). Tuples sort as their keys do."""

    due: int
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


def window_key(key: str, start: int, end: int, by_end: bool = False) -> bytes:
    """The ``W`` record's key: ``key | start | end``, or with ``by_end`` (session tables)
    ``key | end | start``."""
    first, second = (end, start) if by_end else (start, end)
    return DATA + _encode_key(key) + _TWO_TIMES.pack(first + _BIAS, second + _BIAS)


def parse_window_key(raw: bytes, by_end: bool = False) -> tuple[str, int, int]:
    """``(key, start, end)`` of a ``W`` record's key."""
    first = decode_time(raw[-2 * _TIME_BYTES : -_TIME_BYTES])
    second = decode_time(raw[-_TIME_BYTES:])
    start, end = (second, first) if by_end else (first, second)
    return _decode_key(raw[1 : -2 * _TIME_BYTES]), start, end


def parsed_windows(
    records: Iterable[tuple[bytes, bytes]], by_end: bool = False
) -> Iterator[tuple[str, int, int, bytes]]:
    """``(key, start, end, value)`` of each ``W`` record of ``records`` (a range scan, in key
    order), the key decoded once for each run of records of the same key."""
    last_raw, key = b"", ""
    width = 2 * _TIME_BYTES
    for raw_key, value in records:
        cut = len(raw_key) - width
        key_raw = raw_key[1:cut]
        if key_raw != last_raw:
            last_raw, key = key_raw, _decode_key(key_raw)
        first, second = _TWO_TIMES.unpack_from(raw_key, cut)
        if by_end:
            yield key, second - _BIAS, first - _BIAS, value
        else:
            yield key, first - _BIAS, second - _BIAS, value


def key_after(key: str, start: int, end: int) -> bytes:
    """The smallest key of a store ordered by ``(key, start, end)`` (not ``by_end``) that is
    after the window's: a scan from it starts with the next window."""
    return window_key(key, start, end) + b"\x00"


def key_range(key: str, after: int | None = None) -> tuple[bytes, bytes]:
    """``[low, high)`` holding exactly the windows of ``key`` (with ``after``, those whose
    first time, the start or with ``by_end`` the end, is later than ``after``)."""
    prefix = DATA + _encode_key(key)
    low = prefix if after is None else prefix + encode_time(after + 1)
    return low, prefix + b"\xff" * (2 * _TIME_BYTES + 1)


def prefix_range(prefix: str) -> tuple[bytes, bytes]:
    """``[low, high)`` holding exactly the windows of the keys that start with ``prefix`` (all
    windows for ``""``): a key's encoding starts with its prefix's escaped bytes, and the byte
    after them is never ``FF`` (UTF-8 has none; the escape puts one only after a ``00``)."""
    low = DATA + prefix.encode().replace(b"\x00", b"\x00\xff")
    return low, low + b"\xff"


def data_range() -> tuple[bytes, bytes]:
    """``[low, high)`` holding every window of the partition."""
    return DATA, DATA + b"\xff"


def encode_window(state: WindowState) -> bytes:
    """``[version, states]``, or ``[version, states, cause]`` when the window has a cause."""
    if state.cause is None:
        return orjson.dumps([state.version, state.states])
    return orjson.dumps([state.version, state.states, state.cause])


def decode_window(start: int, end: int, raw: bytes) -> WindowState:
    """The window :func:`encode_window` wrote; a record written before causes were saved (two
    items) reads with no cause."""
    decoded = orjson.loads(raw)
    cause = decoded[2] if len(decoded) > 2 else None
    return WindowState(start=start, end=end, states=decoded[1], version=decoded[0], cause=cause)


def index_key(entry: Scheduled, space: bytes = INDEX) -> bytes:
    """The key of ``entry`` in the time index (or, with ``space`` :data:`OVERDUE`, there)."""
    due, key, start, end = entry
    return space + _DUE.pack(due + _BIAS) + _encode_key(key) + _TWO_TIMES.pack(start + _BIAS, end + _BIAS)


def parse_index_key(raw: bytes) -> Scheduled:
    t = _TIME_BYTES
    return Scheduled(
        due=decode_time(raw[1 : 1 + t]),
        key=_decode_key(raw[1 + t : -2 * t]),
        start=decode_time(raw[-2 * t : -t]),
        end=decode_time(raw[-t:]),
    )


def index_start(after: int | None, space: bytes = INDEX) -> bytes:
    """The first key of the index entries with ``due > after`` (``after`` ``None``: all)."""
    return space if after is None else space + encode_time(after + 1)


def encode_meta(value: Any) -> bytes:
    return orjson.dumps(value)


def decode_meta(raw: bytes | None) -> Any:
    return None if raw is None else orjson.loads(raw)
