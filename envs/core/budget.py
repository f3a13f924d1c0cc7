"""The proxy-training budget and network skeleton of a task (:class:`Budget`).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Budget:
    """The proxy-training budget and network skeleton of a task."""

    epochs: int = 10
    """Training epochs of one evaluation."""
    channels: int = 16
    """Channels C of the first stage (doubled at each reduction)."""
    cells_per_stage: int = 1
    """Normal cells N per stage."""
    stages: int = 3
    """Stages, with a reduction cell between consecutive ones."""
    crop_padding: int = 4
    """Padding of the random crop applied to every training batch (0: none)."""
    flip: bool = True
    """Random horizontal flips (off for digits, where they change the class)."""
    eval_batch_size: int = 1024
    """Batch size for scoring the validation and test splits."""
