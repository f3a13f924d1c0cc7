"""The hard tier's pilot (issue 15): train a uniform sample of every candidate space, resumably.

    OMP_NUM_THREADS=1 nohup nice -n 10 python3 benchmarks/hard_pilot.py > /tmp/hard_pilot.log 2>&1 &

trains, for each candidate of :data:`hard_pilot_lib.CANDIDATES`, ``--n``
uniformly sampled pipelines once and ``--repeat`` of them a second time (a second seed, for the
noise estimate), the candidates interleaved, one training at a time on one torch thread. Results go
to ``benchmarks/results/hard_pilot/<candidate>.jsonl`` (one line per training, flushed); rerunning
the command skips what is done. ``--analyse`` then prints the pilot statistics
(:mod:`hard_pilot_lib`).
"""
from __future__ import annotations

import argparse
from pathlib import Path

OUT = Path(__file__).resolve().parent / "results" / "hard_pilot"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--candidates", default="budget,regularise,combined:500:60",
                        help="NAME[:N[:REPEAT]],... (N and REPEAT default to --n and --repeat)")
    parser.add_argument("--n", type=int, default=700, help="pipelines sampled per candidate")
    parser.add_argument("--repeat", type=int, default=100, help="of them trained with a second seed")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--analyse", action="store_true", help="print the statistics instead of training")
    parser.add_argument("--all", action="store_true", help="with --analyse: every results file in --out")
    parser.add_argument("--save", action="store_true", help="with --analyse: write analysis.txt and analysis.json")
    parser.add_argument("--with-build", action="store_true",
                        help="with --analyse: add the build's shards of the same space (results/hard_build/)")
    args = parser.parse_args(argv)
    plan = {}
    for item in filter(None, args.candidates.split(",")):
        name, *sizes = item.split(":")
        plan[name] = (int(sizes[0]) if sizes else args.n, int(sizes[1]) if len(sizes) > 1 else args.repeat)
    names = list(plan)
    if args.analyse:
        from hard_pilot_lib import analyse_pilot, format_pilot

        import json

        report, blocks = {}, []
        for name in sorted(p.stem for p in args.out.glob("*.jsonl")) if args.all else names:
            files = [args.out / f"{name}.jsonl"]
            if args.with_build:
                files += sorted((args.out.parent / "hard_build").glob(f"{name}-*.jsonl"))
            report[name] = analyse_pilot(name, files)
            blocks.append(format_pilot(report[name]))
            print(blocks[-1], flush=True)
        if args.save:
            (args.out / "analysis.txt").write_text("\n\n".join(blocks) + "\n", encoding="utf-8")
            (args.out / "analysis.json").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
        return

    import torch

    torch.set_num_threads(1)
    from hard_pilot_lib import CANDIDATES, interleave, pilot_jobs
    from ma2ml.bench.hard.trainer import TableTrainer, run_jobs
    from ma2ml.bench.results import ResultsFile

    lists, files = [], []
    for name in names:
        candidate = CANDIDATES[name]
        trainer, out = TableTrainer(candidate), ResultsFile(args.out / f"{name}.jsonl", candidate.fingerprint())
        files.append(out)
        lists.append([(trainer, out, job) for job in pilot_jobs(candidate, *plan[name])])
    work = interleave(lists)
    todo = sum(job not in out.done for _, out, job in work)
    print(f"pilot: {len(work)} trainings, {todo} to do", flush=True)
    try:
        run_jobs(work)
    finally:
        for out in files:
            out.close()
    print("pilot: done", flush=True)


if __name__ == "__main__":
    main()
