"""``python -m ma2ml``: the same as the ``ma2ml`` console script."""
from __future__ import annotations

import sys

from ma2ml.cli import main

sys.exit(main())
