"""Logging: one structured line per record, secrets redacted, never blocking the event loop.

`configure_logging()` is called once by `create_app` and by the worker command. Every record (our
own through structlog, and those of uvicorn and other libraries through the standard `logging`
module) goes through the same processors:

- **Redaction.** Fields whose name says they hold a secret (`password`, `token`, `secret`,
  `authorization`, `cookie`, ...) are replaced by `[redacted]`, and so are secrets recognised
  inside any text: API keys (`tnt_<prefix>_<secret>`), webhook secrets (`whsec_...`),
  `Bearer ...` credentials, and the tokens in invitation, password-reset and published-link
  paths (access log lines carry those paths).
- **Exceptions** become three fields, `error_type`, `error` (the message, redacted and cut short)
  and `where` (the last frames as `module:line function`), never a traceback with local variables.
- **No waiting on the output.** Records are rendered where they happen (a dictionary to one
  line: microseconds) and handed to a bounded queue; one thread writes them out. When the queue
  is full (the output cannot keep up), records are dropped and counted in
  `tenantry_log_records_dropped_total` rather than stalling requests.

`TENANTRY_LOG_FORMAT=json` writes one JSON object per line; the default is `key=value` text.
"""

from __future__ import annotations

import atexit
import logging
import logging.handlers
import queue
import re
import sys
import traceback
from collections.abc import Mapping, MutableMapping
from contextvars import ContextVar
from typing import Any, TextIO

import structlog
from prometheus_client import Counter

REDACTED = "[redacted]"
MAX_ERROR_CHARS = 500
QUEUE_SIZE = 10_000

DROPPED = Counter(
    "tenantry_log_records_dropped_total", "Log records dropped because the output could not keep up."
)

# A field whose name contains one of these words holds a secret.
_SECRET_NAME = re.compile(
    r"password|passwd|secret|token|authorization|api_key|apikey|cookie|credential", re.I
)
# Secrets recognised inside text, whatever field carries them.
_SECRET_TEXT = (
    (re.compile(r"\b(tnt_[0-9a-f]{12}_)[A-Za-z0-9_\-]+"), r"\1" + REDACTED),
    (re.compile(r"\bwhsec_[A-Za-z0-9_\-]+"), "whsec_" + REDACTED),
    (re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=\-]+", re.I), r"\1 " + REDACTED),
    (re.compile(r"(/(?:invite|reset|published)/)[A-Za-z0-9_\-]{16,}"), r"\1" + REDACTED),
    (re.compile(r"(tenantry_(?:session|csrf|link_\d+)=)[^;\s\"']+"), r"\1" + REDACTED),
)


def redact_text(text: str) -> str:
    for pattern, replacement in _SECRET_TEXT:
        text = pattern.sub(replacement, text)
    return text


def _redact(value: Any, depth: int = 0) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if depth >= 4:
        return value
    if isinstance(value, Mapping):
        return {
            k: REDACTED if isinstance(k, str) and _SECRET_NAME.search(k) else _redact(v, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_redact(v, depth + 1) for v in value]
    return value


def redact(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """A structlog processor: blank secret fields, strip secrets out of every text."""
    for key, value in list(event.items()):
        if _SECRET_NAME.search(key):
            event[key] = REDACTED
        else:
            event[key] = _redact(value)
    return event


def describe_exception(exc: BaseException) -> dict[str, Any]:
    """What a log line says of an exception: its type, its message, where it happened."""
    frames = traceback.extract_tb(exc.__traceback__)[-3:]
    where = [f"{_module(f.filename)}:{f.lineno} {f.name}" for f in frames]
    message = redact_text(str(exc).strip().splitlines()[0] if str(exc).strip() else "")
    return {"error_type": type(exc).__name__, "error": message[:MAX_ERROR_CHARS], "where": where}


def _module(filename: str) -> str:
    for marker in ("/site-packages/", "/src/", "/lib/python"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename.rsplit("/", 1)[-1]


def summarise_exception(
    _logger: Any, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Replace `exc_info` by a summary: a traceback would print local variables, and many lines."""
    exc_info = event.pop("exc_info", None)
    if exc_info:
        if exc_info is True:
            exc_info = sys.exc_info()
        exc = exc_info if isinstance(exc_info, BaseException) else exc_info[1]
        if exc is not None:
            event.update(describe_exception(exc))
    event.pop("stack_info", None)
    return event


class _DroppingQueueHandler(logging.handlers.QueueHandler):
    """Render the record here (cheap), hand it over without waiting; drop it when the queue is full."""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        if record.exc_info and record.exc_info[1] is not None and not isinstance(record.msg, dict):
            # A foreign record with a traceback (uvicorn's "Exception in ASGI application"): one line.
            summary = describe_exception(record.exc_info[1])
            record.msg = f"{record.getMessage()} ({summary['error_type']}: {summary['error']})"
            record.args = None
        record.exc_info = record.exc_text = None
        record.stack_info = None
        return super().prepare(record)

    def enqueue(self, record: logging.LogRecord) -> None:
        try:
            self.queue.put_nowait(record)
        except queue.Full:
            DROPPED.inc()


# The id of the request being served, on every line it logs (set by `api.middleware`; a plain
# context variable costs less than binding structlog's on every request).
REQUEST_ID: ContextVar[str | None] = ContextVar("tenantry_request_id", default=None)


def add_request_id(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    request_id = REQUEST_ID.get()
    if request_id is not None:
        event.setdefault("request_id", request_id)
    return event


_listener: logging.handlers.QueueListener | None = None
_configured: tuple[str, str, int] | None = None


def configure_logging(level: str = "INFO", fmt: str = "console", stream: TextIO | None = None) -> None:
    """Route every log record through the processors above to one writer thread (idempotent)."""
    global _listener, _configured
    # The process's own stderr, never a replacement someone may close (a test runner's capture).
    out = stream or sys.__stderr__ or sys.stderr
    key = (level.upper(), fmt, id(out))
    if _configured == key:
        return
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        add_request_id,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        summarise_exception,
        redact,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False, exception_formatter=structlog.dev.plain_traceback)
    )
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    records: queue.Queue[logging.LogRecord] = queue.Queue(QUEUE_SIZE)
    handler = _DroppingQueueHandler(records)
    handler.setFormatter(formatter)
    writer = logging.StreamHandler(out)
    writer.setFormatter(logging.Formatter("%(message)s"))

    if _listener is not None:
        _listener.stop()
    root = logging.getLogger()
    for old in list(root.handlers):
        if isinstance(old, _DroppingQueueHandler):
            root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # uvicorn's loggers write through the root logger like everything else.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        named = logging.getLogger(name)
        named.handlers.clear()
        named.propagate = True
    # Checking the schema's revision (`serve`, `/healthz`) is not news, nor is every request an HTTP
    # client makes (the worker logs each job's outcome itself).
    for quiet in ("alembic.runtime.migration", "httpx", "httpx2", "httpcore"):
        logging.getLogger(quiet).setLevel(logging.WARNING)
    _listener = logging.handlers.QueueListener(records, writer)
    _listener.start()
    _configured = key


def flush_logs() -> None:
    """Write out what is queued (at exit, and for tests that read the log)."""
    if _listener is not None:
        _listener.stop()
        _listener.start()


@atexit.register
def _stop() -> None:
    if _listener is not None:
        _listener.stop()
