"""The logging policy: stdlib logging, one JSON object per line (or plain text), and redaction.

Fields passed with ``extra=`` become JSON keys. Callers never pass parameter values or
configuration; a command's exception text and traceback are logged only scrubbed of them
(execution.command_failed, connector_proxy.scrubbing). Loggers are named by
``__name__``; the two channels several modules share are the constants below. URLs of the browser
OAuth flow lose their query in every log line (:func:`install_log_redaction`, which the app factory
and :func:`configure_logging` call).
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import httpx
import orjson

DO_CHANNEL = "connector_proxy.do"  # one line per /v1/do outcome worth logging
OAUTH_CHANNEL = "connector_proxy.oauth"  # the browser OAuth flow, local or forwarded

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "taskName",
    "color_message",
}


def lean_records() -> None:
    """Records stop looking up what no line of the proxy prints: the calling function, file and line
    (a walk up the stack), the thread's name, the multiprocessing process name and the asyncio task.
    The logging HOWTO's "Optimization" section names these switches; the process id stays (gunicorn
    prints it). About a third of the cost of the call's log line."""
    logging._srcfile = None  # the documented switch for findCaller
    logging.logThreads = False
    logging.logMultiprocessing = False
    if sys.version_info >= (3, 12):
        logging.logAsyncioTasks = False


class JsonFormatter(logging.Formatter):
    """One JSON object per record; ``ts`` has a resolution of one second, formatted once per second."""

    _second: tuple[int, str] = (-1, "")

    def _timestamp(self, record: logging.LogRecord) -> str:
        second = int(record.created)
        cached = self._second
        if cached[0] != second:
            cached = self._second = (second, self.formatTime(record, "%Y-%m-%dT%H:%M:%S"))
        return cached[1]

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": self._timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        payload.update(_fields(record))
        return orjson.dumps(payload, default=str).decode()


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    """The fields passed with ``extra=``, and an exception's type (never its text: it may hold secrets).

    kopf's per-object records (the operator's) carry its whole settings object and bookkeeping as
    extras: they become one ``object`` field naming the Connector (``Connector spiff/crm``)."""
    fields = {k: v for k, v in record.__dict__.items() if k not in _STANDARD}
    ref = fields.pop("k8s_ref", None)
    if ref is not None:
        fields.pop("settings", None)
        fields.pop("k8s_skip", None)
        if isinstance(ref, dict):
            fields["object"] = f"{ref.get('kind')} {ref.get('namespace')}/{ref.get('name')}"
    if record.exc_info and record.exc_info[0] is not None:
        fields["exc_type"] = record.exc_info[0].__name__
    return fields


class TextFormatter(logging.Formatter):
    """One line per record, the fields passed with ``extra=`` as ``key=value``; like the JSON
    formatter it names an exception's type and leaves out its text and traceback (either may hold
    secrets; the proxy logs scrubbed ones as fields)."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        record.message = record.getMessage()
        record.asctime = self.formatTime(record)
        line = self.formatMessage(record)  # not super().format(): it would append the traceback
        fields = _fields(record)
        if fields:
            line += " " + " ".join(f"{k}={_text(v)}" for k, v in fields.items())
        return line


def _text(value: object) -> str:
    text = value if isinstance(value, str) else orjson.dumps(value, default=str).decode()
    return orjson.dumps(text).decode() if any(c in text for c in ' "=\n') else text


def configure_logging(level: str = "INFO", fmt: str = "json") -> None:
    lean_records()
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    install_log_redaction()
    root.setLevel(level.upper())
    # httpx logs every request line at INFO (URLs can carry query-string credentials, and it costs
    # time on the hot path): only its warnings.
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def _redacted(value: object) -> object:
    text = str(value) if isinstance(value, str | httpx.URL) else None
    if text is None:
        return value
    path, separator, _ = text.partition("?")
    return f"{path}?[redacted]" if separator and "/v1/auth/" in path else value


class RedactOAuthQuery(logging.Filter):
    """Log lines naming a ``/v1/auth/...`` URL lose its query: it holds the code, the state and
    spiff-arena's session token. Installed on uvicorn's access log (off unless ``--access-log``)
    and on httpx's request log (forwarding to workloads)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_redacted(arg) for arg in record.args)
        return True


def install_log_redaction() -> None:
    """Idempotent. Also keeps httpcore below DEBUG: its trace lines carry response headers (the
    ``Location`` with the token set) of forwarded flows."""
    for name in ("uvicorn.access", "httpx"):
        target = logging.getLogger(name)
        if not any(isinstance(f, RedactOAuthQuery) for f in target.filters):
            target.addFilter(RedactOAuthQuery())
    httpcore = logging.getLogger("httpcore")
    if httpcore.level == logging.NOTSET:
        httpcore.setLevel(logging.INFO)
