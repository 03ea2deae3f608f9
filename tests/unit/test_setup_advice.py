from selfheal.core import logreader

GOOD = {"logging_collector": "on", "log_destination": "stderr,jsonlog", "lc_messages": "C",
        "log_min_error_statement": "error"}


def test_nothing_to_change_when_logging_is_set_up():
    assert logreader.logging_advice(GOOD) == []


def test_default_server_needs_collector_restart_and_jsonlog():
    advice = {a.setting: a for a in logreader.logging_advice(
        {"logging_collector": "off", "log_destination": "stderr", "lc_messages": "de_DE.UTF-8",
         "log_min_error_statement": "panic"})}
    assert advice["logging_collector"].needs_restart
    assert advice["log_destination"].statement == "ALTER SYSTEM SET log_destination = 'stderr,jsonlog'"
    assert not advice["log_destination"].needs_restart
    assert advice["lc_messages"].wanted == "C"
    assert advice["log_min_error_statement"].wanted == "error"


def test_jsonlog_is_preferred_then_csvlog():
    assert logreader.preferred_format("csvlog, jsonlog") == "jsonlog"
    assert logreader.preferred_format("stderr,csvlog") == "csvlog"
    assert logreader.preferred_format("stderr") is None
