"""The command line's own promises: every option says its default, --version, plurals, and a
checklist coloured only on a terminal."""

import argparse
import io

import pytest

from selfheal.cli import adopt, export

from selfheal.cli import commands as cli
from selfheal.core.wording import plural


def options():
    parser = cli._parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, sub in commands.choices.items():
        for action in sub._actions:
            if action.option_strings and not isinstance(action, argparse._HelpAction):
                yield name, action


@pytest.mark.parametrize("command, action", list(options()), ids=lambda x: getattr(x, "dest", x))
def test_every_option_has_help_with_its_default(command, action):
    assert action.help, f"{command} {action.option_strings}"
    assert "default" in action.help or action.required, f"{command} {action.option_strings}: {action.help}"


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["--version"])
    assert info.value.code == 0 and capsys.readouterr().out.startswith("selfheal ")


@pytest.mark.parametrize("count, word", [(0, "0 errors"), (1, "1 error"), (2, "2 errors")])
def test_plurals(count, word):
    assert plural(count, "error") == word
    assert plural(1, "entry", "entries") == "1 entry" and plural(3, "entry", "entries") == "3 entries"


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_checklist_is_coloured_only_on_a_terminal(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    steps = [adopt.Step(adopt.FAULT, "role app is not routed", "", ["SELECT selfheal.enable_compat('app')"])]
    plain, terminal = io.StringIO(), Terminal()
    cli.print_checklist("doctor", steps, plain)
    cli.print_checklist("doctor", steps, terminal)
    assert "\033[" not in plain.getvalue() and "[fault] role app is not routed" in plain.getvalue()
    assert "\033[31m[fault]" in terminal.getvalue()
    monkeypatch.setenv("NO_COLOR", "1")
    quiet = Terminal()
    cli.print_checklist("doctor", steps, quiet)
    assert "\033[" not in quiet.getvalue()


def test_a_migration_counts_its_changes_not_its_timeouts():
    migration = export.Migration(["-- why\nSET LOCAL lock_timeout = '2s'", "SET LOCAL statement_timeout = '10s'",
                                  "-- added\nALTER TABLE t ADD COLUMN c int", "CREATE VIEW v AS SELECT 1"], [], [])
    assert migration.changes == 2
