"""The worker's logging configuration writes the settings' format, naming the app and worker."""

import logging
import logging.config
from collections.abc import Iterator

import orjson
import pytest

from agents.worker import logging_config
from streams.settings import Settings
from streams.telemetry.logfmt import logfmt, parse_logfmt


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.parametrize("log_format", ["logfmt", "json"])
def test_the_worker_logs_in_the_settings_format(
    log_format: str, capsys: pytest.CaptureFixture[str], restore_logging: None
) -> None:
    settings = Settings(app_id="shop", web_host="10.0.0.7", web_port=6070, log_format=log_format)
    logging.config.dictConfig(logging_config("info", settings))
    logging.getLogger("continust.test").warning(logfmt("test.line", n=1))
    logging.getLogger("faust.worker").info("Starting")
    lines = capsys.readouterr().err.splitlines()
    parse = orjson.loads if log_format == "json" else parse_logfmt
    first, second = (parse(line) for line in lines)
    assert (first["app"], first["worker"], first["event"]) == ("shop", "10.0.0.7:6070", "test.line")
    assert (second["logger"], second["msg"], second["worker"]) == (
        "faust.worker",
        "Starting",
        "10.0.0.7:6070",
    )
