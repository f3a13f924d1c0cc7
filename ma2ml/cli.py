"""The ``ma2ml`` command line: ``list`` and ``download`` here, the other sub-commands in
:mod:`ma2ml.commands` (this module imports them, never the other way); bad input ends in one
line on stderr and exit code 2, never a traceback.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import traceback
from collections.abc import Sequence
from typing import Any

from ma2ml import commands
from ma2ml.commands.common import CliError, Handler, Parser
from ma2ml.envs.core.errors import UserError

__all__ = ["COMMANDS", "CliError", "Parser", "REPORT_LINE", "build_parser", "main"]

REPORT_LINE = "this is a bug in ma2ml, not in your input: please report it with the command line and the traceback above"
"""Printed after the traceback of an error that is not a :class:`UserError`."""


def _cmd_list(args: argparse.Namespace) -> None:
    import ma2ml.envs
    from ma2ml.envs.tasks import get_task, task_names

    print("PettingZoo envs (pettingzoo.make('parallel', ID); Gymnasium joint view: JointAutoML-...):")
    for env_id in ma2ml.envs.env_ids():
        print(f"  {env_id}")
    print("Token-level MARL views (one Discrete token per agent and step; docs/marl.md):")
    for env_id in ma2ml.envs.token_env_ids():
        print(f"  {env_id}")
    print("Tasks:")
    for name in task_names():
        task = get_task(name)
        print(f"  {name:13s} {task.description}")
    from ma2ml.learners import learner_names, learner_spec

    print("Learners:")
    for name in learner_names():
        print(f"  {name:15s} {learner_spec(name).description}")


def _cmd_download(args: argparse.Namespace) -> None:
    from ma2ml.envs.tasks.data import download_cifar

    path = download_cifar(args.dataset, args.data_dir)
    print(f"{args.dataset} is in {path}")


COMMANDS: dict[str, Handler] = {"list": _cmd_list, "download": _cmd_download}
"""Sub-command -> its handler: these two, and each :mod:`ma2ml.commands` module's (:func:`build_parser`)."""


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="ma2ml",
        description="Multi-agent AutoML: search AUG + NAS + HPO pipelines with cooperative MARL.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    sub.add_parser("list", help="list the registered envs, tasks and learners")
    p = sub.add_parser("download", help="fetch CIFAR into a folder (torchvision's format)")
    p.add_argument("dataset", choices=["cifar10", "cifar100"])
    p.add_argument("--data-dir", required=True, help="folder to put the dataset in")
    for name, module in commands.modules().items():
        COMMANDS[name] = module.register(sub)
    return parser


def _one_line(exc: BaseException) -> str:
    """An error message on one line (a multi-line message keeps its lines, joined)."""
    return " ".join(line.strip() for line in str(exc).splitlines() if line.strip()) or type(exc).__name__


def main(argv: Sequence[str] | None = None) -> int:
    from ma2ml.envs.core.threads import set_process_threads

    args = build_parser().parse_args(argv)
    set_process_threads()  # the thread policy (ma2ml.envs.core.threads): 1 torch thread outside trainings
    # SIGTERM takes Ctrl-C's path: one line, a resumable run folder, exit code 128 + the signal
    # (130 for SIGINT, 143 for SIGTERM); a second SIGTERM during the cleanup ends the process at once.
    received = [signal.SIGINT]

    def on_sigterm(signum: int, _frame: Any) -> None:
        received[0] = signum
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        raise KeyboardInterrupt

    main_thread = threading.current_thread() is threading.main_thread()  # where handlers can be set
    previous = signal.signal(signal.SIGTERM, on_sigterm) if main_thread else None
    try:
        COMMANDS[args.command](args)
    except UserError as exc:
        print(f"ma2ml {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the output went to a pipe that closed early (`ma2ml list | head`): not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:  # permissions, a full disk, a folder where a file was expected, ...
        where = f": {exc.filename}" if exc.filename else ""
        print(f"ma2ml {args.command}: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"ma2ml {args.command}: interrupted; rerun the same command to resume", file=sys.stderr)
        return 128 + received[0]
    except Exception:  # a bug (ours or a library's): the traceback is what a report needs
        traceback.print_exc()
        print(f"ma2ml {args.command}: {REPORT_LINE}", file=sys.stderr)
        return 1
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
    return 0
