"""Logs as JSON lines (one object per line) carrying the request and auction ids of the line's context."""

from __future__ import annotations

import logging
import logging.config
from typing import Any, Literal

from service.observability import log_context


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = log_context.request_id.get()
        record.auction_id = log_context.auction_id.get()
        return True


def logging_config(level: str, fmt: Literal["json", "text"]) -> dict[str, Any]:
    formatter: dict[str, Any]
    if fmt == "json":
        formatter = {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s %(auction_id)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        }
    else:
        formatter = {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s %(auction_id)s] %(message)s"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": ContextFilter}},
        "formatters": {"default": formatter},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "default",
                "filters": ["context"],
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"level": level.upper(), "handlers": ["stderr"]},
        # uvicorn's own loggers propagate to the root handler instead of printing their own format.
        "loggers": {
            name: {"handlers": [], "propagate": True, "level": level.upper()}
            for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "vllm")
        },
    }


def configure_logging(level: str, fmt: Literal["json", "text"]) -> dict[str, Any]:
    config = logging_config(level, fmt)
    logging.config.dictConfig(config)
    return config
