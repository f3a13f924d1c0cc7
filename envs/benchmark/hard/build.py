"""The hard tier's resumable, sharded build: every pipeline of a candidate space trained with
:data:`BUILD_SEEDS` seeds, then the best pipelines with :data:`TOP_SEEDS` more.

* **Shards.** A fixed random permutation of the pipelines (seed :data:`ORDER_SEED`) is cut into
  shards of :data:`SHARD_SIZE`; shard ``k`` is ``<out>/<candidate>-<k:02d>.jsonl`` and holds every
  replicate of its pipelines. Shards are built in order, each pipeline's replicates one after the
  other, so a finished shard never changes again (it can be committed) and every finished shard is
  a uniform random sample of the space.
* **Seeds.** The seed of ``(index, replicate)`` is
  :func:`~ma2ml.envs.benchmark.hard.candidates.candidate_seed`, the pilot's, so a pilot result of
  the chosen space *is* a build result: :func:`import_results` copies them into the shards
  (marked ``"imported_from"``) instead of training them again.
* **The top.** When every shard is complete, the pipelines whose seed-mean reward is in the top
  :data:`TOP_FRACTION` under any of several rewards (the training budgets the benchmark may be
  played with) get :data:`TOP_SEEDS` more replicates (``<out>/<candidate>-top.jsonl``), so the
  ground truth is averaged over more seeds where the ranking is decided.

Every line is a :class:`~ma2ml.envs.benchmark.hard.runner.CandidateTrainer` result (index,
replicate, seed, status, per-epoch validation accuracy, test accuracy, FLOPs, params, train
seconds, error, the build platform). Rerunning the build skips what is done; a torn last line
is dropped; a shard built for another space is refused.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ma2ml.envs.benchmark.build import raw_fingerprint, read_raw
from ma2ml.envs.benchmark.hard.candidates import Candidate
from ma2ml.envs.benchmark.hard.runner import CandidateTrainer, Job, ResultsFile, run_jobs

RewardOfLines = Callable[[dict[str, np.ndarray]], np.ndarray]
"""A reward of result lines given as arrays ``{"index", "val_acc", "flops", "ok"}``."""

SHARD_SIZE = 1000
"""Pipelines per shard file."""

BUILD_SEEDS = 2
"""Replicates of every pipeline (0 and 1)."""

TOP_FRACTION = 0.02
"""Share of the pipelines (by seed-mean reward after the base build) trained with more seeds."""

TOP_SEEDS = 4
"""Extra replicates of those pipelines (replicates 2..5: 6 seeds in all)."""

ORDER_SEED = 15_2027
"""Seed of the permutation that cuts the space into shards."""


def shards(candidate: Candidate) -> list[np.ndarray]:
    """The pipelines of every shard (a fixed random permutation, cut into :data:`SHARD_SIZE` pieces)."""
    perm = np.random.default_rng([ORDER_SEED, *candidate.name.encode()]).permutation(candidate.n_pipelines)
    return [perm[k:k + SHARD_SIZE] for k in range(0, len(perm), SHARD_SIZE)]


def shard_path(out: str | Path, candidate: Candidate, k: int | str) -> Path:
    """``<out>/<candidate>-<k:02d>.jsonl`` (``k="top"``: the extra seeds of the best pipelines)."""
    return Path(out) / (f"{candidate.name}-{k:02d}.jsonl" if isinstance(k, int) else f"{candidate.name}-{k}.jsonl")


def base_work(candidate: Candidate, out: str | Path, seeds: int = BUILD_SEEDS,
              worker: tuple[int, int] = (0, 1)) -> Iterator[tuple[ResultsFile, Job]]:
    """Every base job, shard by shard, each pipeline's replicates together; ``worker=(i, n)``: only
    the shards ``k`` with ``k % n == i`` (so ``n`` processes can build disjoint shards at once)."""
    i, n = worker
    for k, pipelines in enumerate(shards(candidate)):
        if k % n != i:
            continue
        file = ResultsFile(shard_path(out, candidate, k), candidate.fingerprint())
        for index in pipelines:
            for rep in range(seeds):
                yield file, (int(index), rep)


def import_results(candidate: Candidate, out: str | Path, sources: list[str | Path],
                   seeds: int = BUILD_SEEDS) -> int:
    """Copy results of the same space and seeds (e.g. the pilot's) into the shards; returns how many.

    A source built for another space is refused (its fingerprint line differs).
    """
    fingerprint = json.loads(json.dumps(candidate.fingerprint()))
    found: dict[Job, dict[str, Any]] = {}
    for src in sources:
        if raw_fingerprint(Path(src)) != fingerprint:
            raise ValueError(f"{src} was trained for another space than {candidate.name!r}; it cannot seed the build")
        for line in read_raw(src):
            found.setdefault((int(line["index"]), int(line["replicate"])), {**line, "imported_from": str(src)})
    copied = 0
    files: dict[Path, ResultsFile] = {}
    for file, job in base_work(candidate, out, seeds):
        file = files.setdefault(file.path, file)
        if job in found and job not in file.done:
            file.append(found[job])
            copied += 1
    for file in files.values():
        file.close()
    return copied


def read_build(candidate: Candidate, out: str | Path) -> list[dict[str, Any]]:
    """Every result line of a build folder (base shards and the top file)."""
    lines: list[dict[str, Any]] = []
    for k in [*range(len(shards(candidate))), "top"]:
        path = shard_path(out, candidate, k)
        if path.exists():
            lines += list(read_raw(path))
    return lines


def top_pipelines(candidate: Candidate, out: str | Path, rewards: Sequence[RewardOfLines],
                  fraction: float = TOP_FRACTION, seeds: int = BUILD_SEEDS) -> np.ndarray:
    """The pipelines in the top ``fraction`` by their mean reward over the base replicates, under
    any of ``rewards`` (the union of their tops; sorted indices).

    A reward maps result arrays ``{"index", "val_acc", "flops", "ok"}`` to rewards. Refuses while
    the base build is incomplete.
    """
    lines = [r for r in read_build(candidate, out) if r["replicate"] < seeds]
    n = candidate.n_pipelines
    if len(lines) < n * seeds:
        raise ValueError(f"the base build of {candidate.name!r} is incomplete: {len(lines)} of {n * seeds} results")
    arrays = {"index": np.array([r["index"] for r in lines]), "val_acc": np.array([r["val_acc"] for r in lines]),
              "flops": np.array([r["flops"] for r in lines], dtype=np.float64),
              "ok": np.array([r["status"] == "ok" for r in lines])}
    k = max(int(np.ceil(fraction * n)), 1)
    top: set[int] = set()
    for reward in rewards:
        mean = np.bincount(arrays["index"], weights=reward(arrays), minlength=n) / seeds
        top |= set(np.argsort(-mean, kind="stable")[:k].tolist())
    return np.array(sorted(top), dtype=np.int64)


def top_work(candidate: Candidate, out: str | Path, pipelines: np.ndarray, seeds: int = BUILD_SEEDS,
             extra: int = TOP_SEEDS) -> Iterator[tuple[ResultsFile, Job]]:
    """The extra replicates of the top pipelines, into ``<out>/<candidate>-top.jsonl``."""
    file = ResultsFile(shard_path(out, candidate, "top"), candidate.fingerprint())
    for index in pipelines:
        for rep in range(seeds, seeds + extra):
            yield file, (int(index), rep)


def run_build(candidate: Candidate, out: str | Path, seeds: int = BUILD_SEEDS, limit: int | None = None,
              top: Sequence[RewardOfLines] = (), worker: tuple[int, int] = (0, 1)) -> int:
    """Train the missing base jobs (at most ``limit``; ``worker``: see :func:`base_work`), then, when
    ``top`` rewards are given (see :func:`top_pipelines`) and the base is complete, the extra seeds
    of their tops. Returns how many were trained."""
    i, n = worker
    if not 0 <= i < n:
        raise ValueError(f"worker must be (i, n) with 0 <= i < n, got {worker}")
    trainer = CandidateTrainer(candidate)
    base = list(base_work(candidate, out, seeds, worker))
    todo = [(trainer, f, job) for f, job in base if job not in f.done]
    print(f"build {candidate.name}: {len(base)} base trainings, {len(todo)} to do", flush=True)
    try:
        trained = run_jobs(todo[:limit])
    finally:
        for f in {id(f): f for f, _ in base}.values():
            f.close()
    if not top or (limit is not None and trained >= limit):
        return trained
    extra = list(top_work(candidate, out, top_pipelines(candidate, out, top, seeds=seeds), seeds))
    todo = [(trainer, f, job) for f, job in extra if job not in f.done]
    print(f"build {candidate.name}: {len(extra)} top trainings, {len(todo)} to do", flush=True)
    try:
        trained += run_jobs(todo if limit is None else todo[:limit - trained])
    finally:
        if extra:
            extra[0][0].close()
    return trained
