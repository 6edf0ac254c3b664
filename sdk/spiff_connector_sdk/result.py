"""What a command returns: a result, an accepted (long-running) result, or an error."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ErrorInfo:
    """A command-level error. ``code`` becomes the BPMN error code in spiff-arena."""

    code: str
    message: str


@dataclass
class Result:
    """A completed command.

    ``http_status`` >= 300 or an ``error`` makes spiff-arena fail the task.
    """

    body: Any = None
    mimetype: str = "application/json"
    http_status: int | None = None
    headers: dict[str, str] | None = None
    error: ErrorInfo | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def accepted(self) -> bool:
        return False


@dataclass
class Accepted(Result):
    """A long-running command was accepted; spiff-arena parks the task until the
    command PUTs its final envelope to ``ctx.callback_url``."""

    @property
    def accepted(self) -> bool:
        return True


class CommandError(Exception):
    """Raise from a command to fail it with a stable error code.

    The proxy answers with outer HTTP 200 and ``error = {error_code, message}``;
    the message is the one given here (write it without secrets).
    """

    def __init__(self, code: str, message: str, *, http_status: int | None = None, body: Any = None):
        super().__init__(code)
        self.code = code
        self.message = message
        self.http_status = http_status
        self.body = body
