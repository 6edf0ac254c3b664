"""Reading everything a log record carries (message and ``extra`` fields)."""

from __future__ import annotations

import pytest


def captured_log_text(caplog: pytest.LogCaptureFixture) -> str:
    """Every captured record's message and attributes, as one string to search for leaks."""
    return "\n".join(f"{record.getMessage()} {record.__dict__!r}" for record in caplog.records)
