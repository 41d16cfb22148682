"""User functions a table applies to its source's events, in order, before windows.

A table's chain (``operators`` in its ``[[table]]``) is a list of steps, each one of:

* ``filter``: ``function(payload) -> bool``; the event goes on when the result is true;
* ``map``: ``function(payload) -> dict``: the event goes on with the payload returned;
* ``flat_map``: ``function(payload) -> iterable of dict``: zero or more events go on, each with
  one of the payloads, in the order given.

Every event a chain gives keeps the key and the event time of the record it came from; what the
table's aggregations read is the payload it ends with. A function is named in the pipeline file
as ``"module:function"`` (imported when the pipeline loads, the file's directory first on the
import path) or given as a callable by the Python front end.

**Rules for the functions.** Exactly-once means a record may be processed again after a crash
or a rebalance, and only the state of the committed run counts: a function must be
*deterministic* (the same payload gives the same result, on any worker, at any time) and free of
side effects the engine cannot roll back (no writes to other systems; logging and metrics are
fine). It must not change the payload it is given (other tables of the source read the same
one): a ``map`` returns a new dict.

**Errors.** A function that raises, or returns what its step does not allow (a ``map`` result
that is not a dict, a ``flat_map`` item that is not one), stops the record there: no window of
the table takes any event of it, and the record goes to the source's dead-letter topic with
reason ``user_error`` and the step, the exception's type and message in headers
(:class:`UserFunctionFailed`).
"""

from __future__ import annotations

import pkgutil
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streams.plan.errors import InvalidEvent

OPERATOR_KINDS = ("filter", "map", "flat_map")
USER_ERROR = "user_error"
#: the dead letter's headers of a ``user_error``: the step, and the exception's type and message
OPERATOR_HEADER = "continust-operator"
ERROR_TYPE_HEADER = "continust-error-type"
ERROR_MESSAGE_HEADER = "continust-error-message"


@dataclass(frozen=True)
class Operator:
    """One step of a table's chain: ``kind`` (one of :data:`OPERATOR_KINDS`), the function, and
    ``name``, how the pipeline names it (``"module:function"``)."""

    kind: str
    function: Callable[[dict[str, Any]], Any] = field(compare=False)
    name: str

    @property
    def label(self) -> str:
        """``kind(name)``, as metrics and the catalog show the step."""
        return f"{self.kind}({self.name})"


class UserFunctionFailed(InvalidEvent):
    """User code failed on a record: a step of a table's chain (see the module docstring) or a
    user's aggregation (:mod:`windows.custom_aggregation`), named by ``operator``."""

    def __init__(self, operator: str, error_type: str, message: str) -> None:
        super().__init__(USER_ERROR, f"{operator} failed: {error_type}: {message}")
        self.operator = operator
        self.error_type = error_type
        self.message = message

    def headers(self) -> list[tuple[str, bytes]]:
        return [
            (OPERATOR_HEADER, self.operator.encode()),
            (ERROR_TYPE_HEADER, self.error_type.encode()),
            (ERROR_MESSAGE_HEADER, self.message.encode("utf-8", "replace")),
        ]


def callable_name(function: Callable[..., Any]) -> str:
    """``module:qualified name`` of a function given by the Python front end."""
    module = function.__module__ if hasattr(function, "__module__") else "?"
    name = function.__qualname__ if hasattr(function, "__qualname__") else repr(function)
    return f"{module}:{name}"


def resolve_function(reference: str, near: Path | None = None) -> Callable[..., Any]:
    """The function ``"module:attribute"`` names (``attribute`` may be dotted); ``near``: a
    directory searched first for the module (the pipeline file's). Raises ``ValueError``
    saying what could not be found."""
    module_name, sep, attribute = reference.partition(":")
    if not sep or not module_name or not attribute:
        raise ValueError(f'{reference!r} must name a function as "module:function"')
    if near is not None and str(near) not in sys.path:
        sys.path.insert(0, str(near))
    try:
        found = pkgutil.resolve_name(reference)
    except ImportError as exc:
        raise ValueError(f"cannot import module {module_name!r}: {exc}") from None
    except AttributeError:
        raise ValueError(f"module {module_name!r} has no {attribute!r}") from None
    if not callable(found):
        raise ValueError(f"{reference!r} is not callable")
    return found


class Chain:
    """A table's steps, applied to one payload at a time (:meth:`run`), counting per step the
    events in and out and the failures since :meth:`take_counts`."""

    def __init__(self, operators: Sequence[Operator]) -> None:
        self.operators = tuple(operators)
        n = len(self.operators)
        self._in = [0] * n
        self._out = [0] * n
        self._failed = [0] * n

    def __bool__(self) -> bool:
        return bool(self.operators)

    def run(self, payload: dict[str, Any]) -> list[dict[str, Any]]:
        """The payloads the chain gives for ``payload``, in order; raises
        :class:`UserFunctionFailed` when a step fails (nothing of the record goes on)."""
        payloads = [payload]
        for index, operator in enumerate(self.operators):
            self._in[index] += len(payloads)
            try:
                payloads = _step(operator, payloads)
            except UserFunctionFailed:
                self._failed[index] += 1
                raise
            self._out[index] += len(payloads)
            if not payloads:
                break
        return payloads

    def take_counts(self) -> list[tuple[str, int, int, int]]:
        """Per step, ``(label, events in, events out, failures)`` since the last call."""
        counts = [
            (operator.label, self._in[i], self._out[i], self._failed[i])
            for i, operator in enumerate(self.operators)
        ]
        n = len(self.operators)
        self._in, self._out, self._failed = [0] * n, [0] * n, [0] * n
        return counts


def _step(operator: Operator, payloads: list[dict[str, Any]]) -> list[dict[str, Any]]:
    function, kind = operator.function, operator.kind
    out: list[dict[str, Any]] = []
    for payload in payloads:
        try:
            result = function(payload)
            if kind == "filter":
                if result:
                    out.append(payload)
            elif kind == "map":
                if not isinstance(result, dict):
                    raise TypeError(f"map must return a dict, got {type(result).__name__}")
                out.append(result)
            else:
                if isinstance(result, (dict, str, bytes)):
                    raise TypeError(f"flat_map must return an iterable of dicts, got {type(result).__name__}")
                for item in result:
                    if not isinstance(item, dict):
                        raise TypeError(f"flat_map must give dicts, got {type(item).__name__}")
                    out.append(item)
        except Exception as exc:
            raise UserFunctionFailed(operator.label, type(exc).__name__, str(exc)) from exc
    return out
