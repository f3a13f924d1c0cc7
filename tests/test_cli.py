"""The ``ma2ml`` command line: list, help, one-line errors."""
from __future__ import annotations

import subprocess
import sys

from ma2ml.cli import main


def test_list_prints_envs_and_tasks(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "ma2ml/AutoML-Digits-v0" in out and "digits" in out and "cifar10" in out


def test_console_script_help():
    out = subprocess.run([sys.executable, "-m", "ma2ml", "--help"], capture_output=True, text=True, check=True)
    assert "list" in out.stdout and "usage: ma2ml" in out.stdout


def test_unknown_command_is_an_argparse_error():
    out = subprocess.run([sys.executable, "-m", "ma2ml", "bogus"], capture_output=True, text=True)
    assert out.returncode == 2 and "invalid choice: 'bogus'" in out.stderr and "Traceback" not in out.stderr


def test_a_bug_is_a_traceback_and_a_report_line_not_a_user_error(capsys, monkeypatch):
    """Only a UserError is the user's fault (one line, exit 2); anything else is ours: the traceback and a line
    asking for a report (exit 1), so an internal bug never passes for a usage mistake."""
    import ma2ml.cli as cli

    def broken(args):
        raise ValueError("an internal invariant broke")

    monkeypatch.setitem(cli.COMMANDS, "list", broken)
    assert main(["list"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "ValueError: an internal invariant broke" in err
    assert err.strip().splitlines()[-1] == f"ma2ml list: {cli.REPORT_LINE}"

    def refused(args):
        raise cli.UserError("list: bad input")

    monkeypatch.setitem(cli.COMMANDS, "list", refused)
    assert main(["list"]) == 2
    assert capsys.readouterr().err == "ma2ml list: error: list: bad input\n"
