"""ma2ml: multi-agent AutoML (MA2ML, CVPR 2023) as a PettingZoo environment.

Sub-packages: :mod:`ma2ml.envs` (the environment, tasks, search spaces, evaluators),
:mod:`ma2ml.agents` (MA2ML learners) and :mod:`ma2ml.baselines` (single-agent baselines).
"""
from __future__ import annotations

__version__ = "0.1.0"
