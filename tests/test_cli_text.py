"""What the command line prints is for users: no issue numbers or other project-internal references."""
from __future__ import annotations

import re

import pytest

from ma2ml.cli import main

INTERNAL = re.compile(r"\bissue\s*#?\d+|\bwave \d\b", re.IGNORECASE)


@pytest.mark.parametrize("argv", [["--help"], ["list"], ["search", "--help"], ["compare", "--help"],
                                  ["train", "--help"], ["bench", "--help"], ["bench", "info", "--help"],
                                  ["bench", "build", "--help"], ["bench", "info"], ["bench", "info", "--bench", "hard"]])
def test_no_internal_references(argv, capsys):
    try:
        main(argv)
    except SystemExit:
        pass
    out, err = capsys.readouterr()
    assert out.strip(), err
    assert not INTERNAL.findall(out + err), INTERNAL.findall(out + err)
