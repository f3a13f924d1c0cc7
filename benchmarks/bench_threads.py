"""Thread policy: ``ma2ml search`` on the table env with torch's default vs ``OMP_NUM_THREADS=1``.

Each side is the same command in a fresh process (the docs' example, MA2ML on the table):

    ma2ml search --env ma2ml/AutoML-DigitsBench-v0 --budget 256 --batch-size 16 --out DIR

* ``default``: the environment as a user has it (torch would size its pool to the cores);
* ``OMP_NUM_THREADS=1``: the reference, one thread from the start;
* ``no policy``: the same search with ``ma2ml.envs.core.threads``' policy switched off (learners
  and the CLI left at torch's default), to show what the policy buys on this machine.

Sides alternate over ``--repeats`` rounds and the fastest of each is kept (this machine is
shared). ``--load N`` keeps N other CPU-bound processes running meanwhile: the busy machine
on which torch's idle threads spin-wait (an idle machine shows little difference). The results files of all sides must be identical. The last line is the headline:
default / ``OMP_NUM_THREADS=1`` wall time (target <= 1.2).

    python benchmarks/bench_threads.py [--repeats 2] [--budget 256] [--load 2]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

NO_POLICY = (
    "import sys, torch, ma2ml.agents.base as base, ma2ml.envs.core.threads as threads;"
    "base.LEARNER_THREADS = torch.get_num_threads();"
    "threads.set_process_threads = lambda *a, **k: None;"
    "from ma2ml.cli import main; sys.exit(main(sys.argv[1:]))"
)


def run_side(name: str, args: list[str], out: Path) -> float:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    if name == "OMP_NUM_THREADS=1":
        env["OMP_NUM_THREADS"] = "1"
    prefix = [sys.executable, "-c", NO_POLICY] if name == "no policy" else [sys.executable, "-m", "ma2ml"]
    start = time.perf_counter()
    subprocess.run([*prefix, *args, "--out", str(out)], env=env, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2, help="rounds; the fastest run of each side is kept")
    parser.add_argument("--budget", type=int, default=256, help="evaluations per search")
    parser.add_argument("--load", type=int, default=0, help="other CPU-bound processes to run meanwhile")
    args = parser.parse_args(argv)
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.load)]
    try:
        measure(args)
    finally:
        for p in burners:
            p.kill()
            p.wait()


def measure(args: argparse.Namespace) -> None:
    search = ["search", "--env", "ma2ml/AutoML-DigitsBench-v0", "--budget", str(args.budget), "--batch-size", "16"]
    sides = ["default", "OMP_NUM_THREADS=1", "no policy"]
    best = dict.fromkeys(sides, float("inf"))
    results: dict[str, bytes] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            for side in sides:
                out = Path(tmp) / f"{side.replace('=', '')}-{r}"
                best[side] = min(best[side], run_side(side, search, out))
                results.setdefault(side, (out / "results.jsonl").read_bytes())
    import torch

    print(f"ma2ml search, MA2ML on the table env, budget {args.budget}, batches of 16; {os.cpu_count()} cores, "
          f"torch's default {torch.get_num_threads()} threads, {args.load} busy processes beside; "
          f"fastest of {args.repeats} rounds")
    for side in sides:
        print(f"  {side:20s} {best[side]:7.1f} s")
    same = len(set(results.values())) == 1
    print(f"results.jsonl identical on every side: {same}")
    ratio = best["default"] / best["OMP_NUM_THREADS=1"]
    print(f"without the policy vs OMP_NUM_THREADS=1: {best['no policy'] / best['OMP_NUM_THREADS=1']:.2f}x the time")
    print(f"default vs OMP_NUM_THREADS=1: {ratio:.2f}x the time "
          f"({'target <= 1.2 met' if ratio <= 1.2 else 'TARGET <= 1.2 MISSED'})")


if __name__ == "__main__":
    main()
