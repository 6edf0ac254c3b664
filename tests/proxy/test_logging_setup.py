"""The log formats: JSON and text carry the same fields, and neither an exception's text."""

from __future__ import annotations

import json
import logging
import sys

import pytest

from connector_proxy.logging_setup import JsonFormatter, TextFormatter, configure_logging

SECRET = "s3cr3t-in-exception-text"


def _record(with_exception: bool) -> logging.LogRecord:
    exc_info = None
    if with_exception:
        try:
            raise RuntimeError(f"token {SECRET}")
        except RuntimeError:
            exc_info = sys.exc_info()
    record = logging.LogRecord("connector_proxy.x", logging.WARNING, __file__, 1, "command raised", None, exc_info)
    record.command = "demo/Run"
    record.error = "token ***"
    return record


@pytest.mark.parametrize("formatter", [JsonFormatter(), TextFormatter()], ids=["json", "text"])
def test_an_exception_is_named_never_quoted(formatter: logging.Formatter) -> None:
    line = formatter.format(_record(with_exception=True))
    assert SECRET not in line and "Traceback" not in line
    assert "RuntimeError" in line and "demo/Run" in line and "token ***" in line
    assert "\n" not in line


def test_text_lines_carry_the_fields_as_key_value() -> None:
    line = TextFormatter().format(_record(with_exception=False))
    assert line.endswith(' WARNING connector_proxy.x command raised command=demo/Run error="token ***"')


def test_json_lines_carry_the_same_fields() -> None:
    payload = json.loads(JsonFormatter().format(_record(with_exception=True)))
    assert (payload["command"], payload["error"], payload["exc_type"]) == ("demo/Run", "token ***", "RuntimeError")


def test_a_kopf_object_line_names_its_object_not_kopfs_settings(caplog: pytest.LogCaptureFixture) -> None:
    """kopf's per-object logger adds its whole settings object to every record's extras."""
    import kopf

    body = {"apiVersion": "connectors.spiffworkflow.org/v1alpha1", "kind": "Connector",
            "metadata": {"name": "crm", "namespace": "spiff", "uid": "u-1"}}  # fmt: skip
    with caplog.at_level(logging.INFO, logger="kopf.objects"):
        kopf.ObjectLogger(body=kopf.Body(body), settings=kopf.OperatorSettings()).info("Handler 'converge' succeeded.")
    [record] = caplog.records
    line = json.loads(JsonFormatter().format(record))
    assert line == {
        "ts": line["ts"],
        "level": "info",
        "logger": "kopf.objects",
        "event": "Handler 'converge' succeeded.",
        "object": "Connector spiff/crm",
    }
    assert len(JsonFormatter().format(record)) < 200  # it was about 1.7 KB


def test_json_timestamps_follow_each_records_second() -> None:
    """The timestamp text is kept per second: a record of the next second gets its own."""
    formatter = JsonFormatter()
    first = _record(with_exception=False)
    same = _record(with_exception=False)
    later = _record(with_exception=False)
    first.created, same.created, later.created = 1_700_000_000.1, 1_700_000_000.9, 1_700_000_001.2
    stamps = [json.loads(formatter.format(record))["ts"] for record in (first, same, later)]
    assert stamps[0] == stamps[1] == formatter.formatTime(first, "%Y-%m-%dT%H:%M:%S")
    assert stamps[2] == formatter.formatTime(later, "%Y-%m-%dT%H:%M:%S") != stamps[0]


def test_configured_records_skip_what_no_line_prints(monkeypatch: pytest.MonkeyPatch) -> None:
    """Caller lookup (a stack walk), thread and multiprocessing names are not computed once logging is
    configured; the process id, which gunicorn prints, still is. The lines are unchanged."""
    for name in ("_srcfile", "logThreads", "logMultiprocessing", "logProcesses"):
        monkeypatch.setattr(logging, name, getattr(logging, name))  # restored after the test
    monkeypatch.setattr(logging.getLogger(), "handlers", [])
    configure_logging("INFO", "json")
    records: list[logging.LogRecord] = []
    capture = logging.Handler()
    capture.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("connector_proxy.test_lean_records")
    monkeypatch.setattr(logger, "handlers", [capture])
    logger.info("line")
    (record,) = records
    assert (record.funcName, record.lineno) == ("(unknown function)", 0)
    assert record.threadName is None and record.processName is None
    assert record.process is not None
