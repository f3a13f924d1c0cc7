"""The error a user's input causes: :class:`UserError`.

Everything ma2ml refuses because of what a user gave it (a bad argument, token, file, folder or
command line) raises a :class:`UserError` (a ``ValueError``, so ``except ValueError`` keeps
working) whose message names the problem and the valid values. The command line prints a
``UserError`` as one line and exits with code 2; any other exception is a bug in ma2ml or a
library, and is printed with its traceback and a line asking to report it.
"""
from __future__ import annotations


class UserError(ValueError):
    """Bad input from the user: one line that names the problem and the valid values."""
