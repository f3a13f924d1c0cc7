"""What the sub-commands share: the argument parser, the error they raise, and option helpers.

:class:`Parser` and :data:`CliError` live here, below :mod:`ma2ml.cli`, so the command modules
never import the module that imports them.
"""
from __future__ import annotations

import argparse
import ast
from collections.abc import Callable
from typing import Any, NoReturn

from ma2ml.envs.core.errors import UserError

CliError = UserError
"""The command line's name for :class:`~ma2ml.envs.core.errors.UserError` (printed as one line, exit code 2)."""

Handler = Callable[[argparse.Namespace], None]
"""What a sub-command runs with its parsed arguments."""

MAX_SETTING_CHARS = 10_000
"""Longest ``--env-arg``/``--learner-arg`` value (a setting is a number, a name or a short list)."""


class Parser(argparse.ArgumentParser):
    """``argparse`` with no abbreviated options and usage errors as one line (exit code 2)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def parse_settings(pairs: list[str], option: str) -> dict[str, Any]:
    """``["k=v", ...]`` -> ``{k: literal v}`` (Python literals; anything else is a string); one ``CliError``
    for a malformed pair."""
    from ma2ml.envs.core.fields import shorten

    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key.isidentifier():
            raise CliError(f"{option} expects KEY=VALUE with KEY a name, got {shorten(pair)}")
        if len(text) > MAX_SETTING_CHARS:
            raise CliError(f"{option} {key}= is {len(text):,} characters long; values may have at most "
                           f"{MAX_SETTING_CHARS:,}")
        try:
            out[key] = ast.literal_eval(text)
        except (ValueError, SyntaxError, TypeError):
            out[key] = text
        except (MemoryError, RecursionError):  # deeply nested or operator chains the parser cannot hold
            raise CliError(f"{option} {key}= is nested too deeply to read: {shorten(text)}") from None
    return out


def add_run_options(p: argparse.ArgumentParser, learner_help: str) -> None:
    """``--env-arg``, ``--learner-arg``, ``--executor``, ``--workers`` and ``--allow-repeats`` (``search`` and
    ``compare``)."""
    from ma2ml.experiment import EXECUTORS, MAX_WORKERS

    p.add_argument("--env-arg", action="append", default=[], metavar="KEY=VALUE",
                   help="keyword argument of the env (repeatable), e.g. epochs=1")
    p.add_argument("--learner-arg", action="append", default=[], metavar="KEY=VALUE", help=learner_help)
    p.add_argument("--executor", choices=EXECUTORS, default=None,
                   help="where evaluations run: inprocess, process (a local pool), ray (default: in this "
                        "process, in order); not a setting of the run: a run resumes under another executor")
    p.add_argument("--workers", type=int, default=None,
                   help=f"with --executor process: worker processes, 1..{MAX_WORKERS} (default: one per GPU, "
                        "else one per CPU core)")
    repeats = p.add_mutually_exclusive_group()
    repeats.add_argument("--allow-repeats", action="store_const", const=False, default=None, dest="no_repeat",
                         help="let the learner propose pipelines it has already evaluated: a repeat is charged one "
                              "evaluation and, on a table with seed noise, answers with another stored training "
                              "(default: the no-repeat protocol, every proposal a new pipeline; re-evaluating "
                              "the best under seed noise is the learner setting reevaluate_share; a resumed run "
                              "keeps its own setting)")
    repeats.add_argument("--no-repeats", action="store_const", const=True, dest="no_repeat",
                         help="the no-repeat protocol (the default; stated for scripts that must not depend on it)")
