"""What the routes of a table share: the ``table`` path parameter and its guard (404
``unknown_table``), the ``from``/``to`` time range, and the schema of a window in an answer."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from streams.api.api_routes import ANY_OBJECT, Param, error_response, int_param

WINDOW_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["start", "end", "closed", "value", "version"],
    "properties": {
        "start": {"type": "integer", "description": "epoch ms, inclusive"},
        "end": {"type": "integer", "description": "epoch ms, exclusive"},
        "closed": {"type": "boolean"},
        "value": ANY_OBJECT,
        "version": {"type": "integer"},
    },
}
TABLE_PARAM = Param("table", "path", {"type": "string"}, "a table of the pipeline")
TIME_PARAMS = (
    Param("from", "query", {"type": "integer"}, "epoch ms: windows ending after it"),
    Param("to", "query", {"type": "integer"}, "epoch ms: windows starting before it"),
)


def time_range(request: web.Request) -> tuple[int | None, int | None]:
    """The ``from`` and ``to`` parameters (epoch ms): windows ending after ``from`` and
    starting before ``to``, whatever their order (``from=5&to=5`` selects the windows that
    hold 5 past their start)."""
    return int_param(request, "from"), int_param(request, "to")


def unknown_table(names: list[str], table: str) -> web.Response | None:
    """``None`` when ``table`` is one of the pipeline's tables (``names``), else the 404
    ``unknown_table`` answer naming them."""
    if table in names:
        return None
    return error_response(404, "unknown_table", f"no table {table!r}; tables: {', '.join(names)}")
