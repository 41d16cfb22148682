"""Reading a named field of an event's payload (a JSON object), nested fields included.

A field is named as written: the payload's top-level field of that name when it has one.
Otherwise, a name with dots is a path through nested objects: ``account.id`` is the ``id`` of
the object in ``account``. A top-level field whose name holds dots is therefore always reached
(it is looked up first), and a path is taken only where no such field exists. Every part of a
path but the last must be an object; a path that meets anything else, or a missing part, finds
no field.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def field_value(payload: Mapping[str, Any], field: str) -> Any:
    """The payload's ``field`` (see the module docstring); raises ``KeyError(field)`` when the
    payload has no such field."""
    try:
        return payload[field]
    except KeyError:
        if "." not in field:
            raise
    node: Any = payload
    for part in field.split("."):
        if not isinstance(node, Mapping) or part not in node:
            raise KeyError(field) from None
        node = node[part]
    return node


def has_field(payload: Mapping[str, Any], field: str) -> bool:
    """Whether :func:`field_value` finds ``field``."""
    try:
        field_value(payload, field)
    except KeyError:
        return False
    return True
