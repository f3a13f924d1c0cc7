"""``ma2ml train PIPELINE.json --epochs N [--env ID]``: final training of a found pipeline.

    ma2ml train runs/digits-ma2ml/best.json --epochs 50 [--env ID] [--data-dir DIR] [--out DIR]

Trains the pipeline at full budget on train + validation, prints test accuracy, FLOPs and
params, and writes ``final.pt`` (checkpoint, see :func:`ma2ml.training.final.load_checkpoint`)
and ``final.json`` (the record) to ``--out`` (default: the pipeline file's folder). The env is
``--env``, else the one a search's ``best.json`` names (made with that search's env arguments);
the pipeline file format is in :mod:`ma2ml.training.final`. A pipeline file supplies only
configuration (:data:`ma2ml.training.final.FILE_ENV_ARGS`): paths (``--data-dir``, ``--out``),
stores, executors and the device come from the command line. Every input, ``--out``'s
writability included, is checked before training starts; both files are written atomically after it ends, so a bad input or an interrupted run
leaves nothing half-written.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from ma2ml.commands.common import CliError, Handler

MAX_EPOCHS = 100_000
"""Most epochs of a final training."""
CHECKPOINT_NAME = "final.pt"
RECORD_NAME = "final.json"


def register(sub: argparse._SubParsersAction) -> Handler:
    p = sub.add_parser(
        "train",
        help="train a found pipeline (a search's best.json) at full budget on train+val; report test accuracy",
        description="Train a found pipeline at full budget on train+val, report its test accuracy, FLOPs "
                    "and params, and save a checkpoint that loads back into the same network.",
    )
    p.add_argument("pipeline", help='pipeline file: a search\'s best.json, or {"tokens": {agent: [tokens, ...]}}')
    p.add_argument("--env", help="PettingZoo id of the env the tokens belong to (`ma2ml list`); "
                                 "default: the env the search's best.json names")
    p.add_argument("--epochs", type=int, required=True, help="training epochs (the full budget)")
    p.add_argument("--data-dir", help="dataset folder, for tasks that need one (cifar10, cifar100)")
    p.add_argument("--out", help=f"folder for {CHECKPOINT_NAME} and {RECORD_NAME} (default: the pipeline's folder)")
    p.add_argument("--seed", type=int, default=0, help="training seed (default 0)")
    p.add_argument("--device", default="auto", help="cuda, cpu or auto (CUDA when present; default)")
    return run


def run(args: argparse.Namespace) -> None:
    from tqdm import tqdm

    from ma2ml.experiment import check_seed
    from ma2ml.training.final import FinalTraining, read_pipeline, save_checkpoint
    from ma2ml.training.evaluators import TrainingDiverged
    from ma2ml.runfolder import atomic_write_json, check_writable_folder

    if not 1 <= args.epochs <= MAX_EPOCHS:
        raise CliError(f"--epochs must be an integer in 1..{MAX_EPOCHS:,}, got {args.epochs}")
    check_seed(args.seed, "--seed")
    found = read_pipeline(args.pipeline)
    env_id = args.env or found.env_id
    if env_id is None:
        raise CliError(f"{args.pipeline} names no env (settings.env); pass --env ID (see `ma2ml list`)")
    out = check_writable_folder(args.out if args.out is not None else Path(args.pipeline).resolve().parent)
    env_args = found.env_args if env_id == found.env_id else {}  # a search's arguments fit only its env
    job = FinalTraining(env_id, found.actions, args.epochs, data_dir=args.data_dir, device=args.device,
                        pipeline=found.pipeline, env_args=env_args)
    with tqdm(total=args.epochs, desc="final training", unit="epoch") as bar:
        def progress(_epoch: int, loss: float) -> None:
            bar.set_postfix(loss=f"{loss:.4f}")
            bar.update()

        try:
            model, record = job.run(seed=args.seed, epoch_end=progress)
        except TrainingDiverged as exc:
            raise CliError(f"training diverged ({exc}); nothing written") from None
    out.mkdir(parents=True, exist_ok=True)
    checkpoint = save_checkpoint(out / CHECKPOINT_NAME, model, record)
    summary = atomic_write_json(out / RECORD_NAME, record.to_dict())
    print(f"env {record.env_id}, {record.epochs} epochs on {record.train_size} train+val images "
          f"({record.device}, {record.train_seconds:.1f} s)")
    print(f"test accuracy {record.test_acc:.4f}  FLOPs {record.flops / 1e6:.3f} M multiply-adds  "
          f"params {record.params / 1e6:.3f} M")
    print(f"checkpoint {checkpoint}")
    print(f"record {summary}")
