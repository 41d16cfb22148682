"""Run one worker of a pipeline until SIGTERM or Ctrl-C."""

from __future__ import annotations

import logging
from typing import Any

import faust

from agents.application import prepare
from streams.logfmt import logfmt
from streams.pipeline import Pipeline
from streams.settings import Settings

log = logging.getLogger("continust.worker")


def logging_config(level: str) -> dict[str, Any]:
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"logfmt": {"()": "streams.logfmt.LogfmtFormatter"}},
        "handlers": {
            "stderr": {"class": "logging.StreamHandler", "formatter": "logfmt", "stream": "ext://sys.stderr"}
        },
        "root": {"level": level.upper(), "handlers": ["stderr"]},
    }


def run_worker(pipeline: Pipeline, settings: Settings, loglevel: str = "info") -> int:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    built = prepare(pipeline, settings)
    log.info(
        logfmt(
            "worker.start",
            app=settings.app_id,
            pipeline=pipeline.path,
            web_port=settings.web_port,
            guarantee=settings.processing_guarantee,
            tables=",".join(built.tables),
        )
    )
    worker = faust.Worker(
        built.app,
        loglevel=loglevel,
        logging_config=logging_config(loglevel),
        quiet=True,
    )
    worker.execute_from_commandline()
    return 0
