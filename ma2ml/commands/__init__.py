"""Sub-commands of the ``ma2ml`` CLI beyond ``list`` and ``download``: one module each.

Each module in :data:`COMMANDS` defines ``register(sub) -> handler``: it adds its parser to the
``argparse`` sub-parsers ``sub`` and returns the function that runs it. :func:`ma2ml.cli.build_parser`
imports them (:func:`modules`) and asks each for its parser and handler; no module here imports
:mod:`ma2ml.cli`. What they share is in :mod:`ma2ml.commands.common`.
"""
from __future__ import annotations

import importlib
from types import ModuleType

COMMANDS = ("bench", "compare", "search", "train")
"""The command modules, named as their sub-commands."""


def modules() -> dict[str, ModuleType]:
    """Sub-command name -> its module (imported now)."""
    return {name: importlib.import_module(f"{__name__}.{name}") for name in COMMANDS}
