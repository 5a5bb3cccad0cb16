"""Log lines are JSON objects carrying the call's correlation id and any extra fields."""

import json
import logging

import pytest

from engine import logs


def record(message: str, **extra) -> logging.LogRecord:
    entry = logging.LogRecord("engine.test", logging.WARNING, __file__, 1, message, (), None)
    entry.__dict__.update(extra)
    return entry


def test_json_line_has_time_level_logger_message_and_extras():
    """One object per line; fields passed as `extra` are kept beside the message."""
    line = json.loads(logs.JsonLinesFormatter().format(record("partition down", partition=3)))
    assert line["level"] == "WARNING" and line["logger"] == "engine.test"
    assert line["message"] == "partition down" and line["partition"] == 3
    assert line["ts"].endswith("Z") and "correlation_id" not in line


def test_json_line_carries_the_correlation_id_of_the_call_in_hand():
    """Inside a call the context's id is tagged on every line; an explicit one wins."""
    token = logs.correlation_id.set("cart-77")
    try:
        formatter = logs.JsonLinesFormatter()
        assert json.loads(formatter.format(record("held")))["correlation_id"] == "cart-77"
        explicit = record("shipped", correlation_id="wms-9")
        assert json.loads(formatter.format(explicit))["correlation_id"] == "wms-9"
    finally:
        logs.correlation_id.reset(token)


def test_json_line_keeps_the_traceback():
    """An exception's traceback travels in `exc`, inside the one line."""
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        import sys

        entry = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    line = logs.JsonLinesFormatter().format(entry)
    assert "\n" not in line and "RuntimeError: boom" in json.loads(line)["exc"]


def test_configure_refuses_an_unknown_format():
    """A format other than json or text is refused by name, and logging is left alone."""
    handlers = list(logging.getLogger().handlers)
    with pytest.raises(ValueError, match="xml"):
        logs.configure("xml")
    assert logging.getLogger().handlers == handlers
