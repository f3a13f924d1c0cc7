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
