"""Sub-commands of the ``ma2ml`` CLI beyond ``list``: one module each.

Every module here is imported by :func:`ma2ml.cli.main` and defines
``register(sub)`` that adds its parser to ``sub`` and its handler to ``ma2ml.cli.COMMANDS``.
"""
from __future__ import annotations

import importlib
import pkgutil

from ma2ml import cli

for _info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    _module = importlib.import_module(f"{__name__}.{_info.name}")
    cli.EXTENSIONS.append(_module.register)
