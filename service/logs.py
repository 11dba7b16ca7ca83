"""Logs: one JSON object per line, carrying the id of the request being served, for log
collectors (containers, systemd, files); or plain short lines when a person reads them in a
terminal."""

from __future__ import annotations

import json
import logging
import sys
import time
from contextvars import ContextVar
from typing import Any

_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
REQUEST_ID_SCOPE_KEY = "perceptron.request_id"
"""Where the request id is also kept in the ASGI scope: the handler of unexpected errors runs
outside the middleware that sets the context variable, after it has been reset."""

_NOT_EXTRA = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys()
    | {"message", "asctime", "request_id", "color_message"}
)
"""A record's own attributes, and uvicorn's `color_message` (the message again, with terminal
colour codes); any other is an `extra={...}` field, written as it is."""


def current_request_id() -> str | None:
    return _request_id.get()


def set_request_id(request_id: str | None) -> Any:
    """Sets the request id for the current context; returns a token for `reset_request_id`."""
    return _request_id.set(request_id)


def reset_request_id(token: Any) -> None:
    _request_id.reset(token)


_ENCODER = json.JSONEncoder(default=str)
"""Built once: `json.dumps` with any option builds a new encoder per call."""


class JsonFormatter(logging.Formatter):
    """Formats a record as a JSON line: time, level, logger, message, request id and any
    `extra={...}` fields."""

    def __init__(self) -> None:
        super().__init__()
        self._second = -1
        self._second_text = ""

    def _time(self, record: logging.LogRecord) -> str:
        # strftime is the dearest part of a line; the access log writes thousands a second.
        second = int(record.created)
        if second != self._second:
            self._second_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = second
        return f"{self._second_text}.{int(record.msecs):03d}Z"

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self._time(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None) or current_request_id()
        if request_id:
            entry["request_id"] = request_id
        entry.update({k: v for k, v in record.__dict__.items() if k not in _NOT_EXTRA})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return _ENCODER.encode(entry)


class TextFormatter(logging.Formatter):
    """A short line for a terminal: the time, the level when it is not INFO, the message, and
    how long a request took."""

    def __init__(self) -> None:
        super().__init__(datefmt="%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        level = "" if record.levelno == logging.INFO else f"{record.levelname} "
        line = f"{self.formatTime(record, self.datefmt)} {level}{record.getMessage()}"
        duration = getattr(record, "duration_ms", None)
        if duration is not None:
            line += f" ({duration:g} ms)"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


_START_UP_CHATTER = {
    "uvicorn": (
        "Started server process",
        "Waiting for application startup",
        "Application startup complete",
        "Uvicorn running on",
        "Started parent process",
    ),
    "huey": (
        "Huey consumer started",
        "Scheduler runs every",
        "Periodic tasks are",
        "The following commands are available",
    ),
}
"""uvicorn's and huey's start-up lines (the address, the scheduler, the task list): in a
terminal the service says once, when it is ready, where to open it."""


def _not_start_up_chatter(record: logging.LogRecord) -> bool:
    prefixes = _START_UP_CHATTER.get(record.name.split(".", 1)[0])
    return not (prefixes and isinstance(record.msg, str) and record.msg.startswith(prefixes))


def wants_json(json_lines: bool | None, stream: Any = None) -> bool:
    """JSON lines when asked, or when unset and the stream is not a terminal."""
    if json_lines is not None:
        return json_lines
    stream = sys.stderr if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    return not (callable(isatty) and isatty())


def configure_logging(level: str, *, json_lines: bool | None) -> None:
    """Sends every logger (ours, uvicorn's, huey's) to stderr in one format: JSON lines, plain
    lines, or (None) plain lines when stderr is a terminal and JSON lines otherwise."""
    # Records then skip what no formatter here shows: the caller's frame (a stack walk per
    # record), the thread and the process (the Logging HOWTO's "Optimization" section).
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = logging.StreamHandler(sys.stderr)
    if wants_json(json_lines, sys.stderr):
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter())
        handler.addFilter(_not_start_up_chatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "huey"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
        # uvicorn's own configuration sets levels on these (log_level=...); the root's rules.
        logger.setLevel(logging.NOTSET)
        logger.disabled = False
    # Our access log replaces uvicorn's (it carries the request id and the latency).
    logging.getLogger("uvicorn.access").disabled = True
