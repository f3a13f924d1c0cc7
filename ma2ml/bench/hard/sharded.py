"""The hard tier's resumable, sharded build: every pipeline of a candidate space trained with
:data:`BUILD_SEEDS` seeds, then the best pipelines with :data:`TOP_SEEDS` more.

* **Shards.** A fixed random permutation of the pipelines (seed :data:`ORDER_SEED`) is cut into
  shards of :data:`SHARD_SIZE`; shard ``k`` is ``<out>/<candidate>-<k:02d>.jsonl`` and holds every
  replicate of its pipelines. Shards are built in order, each pipeline's replicates one after the
  other, so a finished shard never changes again (it can be committed) and every finished shard is
  a uniform random sample of the space.
* **Seeds.** The seed of ``(index, replicate)`` is
  :func:`~ma2ml.bench.hard.definitions.training_seed`, the pilot's, so a pilot result of
  the chosen space *is* a build result: :func:`import_results` copies them into the shards
  (marked ``"imported_from"``) instead of training them again.
* **Where the seeds go.** Replicate 0 of every pipeline comes first (``--seeds 1``). Once it is
  complete, replicate 1 goes to the pipelines in the order of their replicate-0 rank (best first,
  the best rank under any of several rewards, :func:`first_seed_rank`), so at any moment the
  pipelines with two seeds are the best ones by their first seed.
* **The top.** Once every pipeline whose first-seed rank lies in the top :data:`SECOND_SEED_COVER`
  has its two base seeds, the pipelines whose two-seed mean reward is in the top
  :data:`TOP_FRACTION` under any of the rewards (the training budgets the benchmark may be played
  with) get :data:`TOP_SEEDS` more replicates (``<out>/<candidate>-top*.jsonl``, one file per
  worker), so the ground truth is averaged over more seeds where the ranking is decided; then the
  top :data:`TOP1_FRACTION` of those by their six-seed mean get :data:`TOP1_SEEDS` more (ten in
  all), because six seeds left the truth's noise at the top above a quarter of the top-1% spread
  on the first measurement (0.0144 / sqrt 6 against a spread of about 0.02). (On the
  first 2,156 pipelines built with both seeds, every pipeline in a two-seed top 2 % had a
  first-seed rank inside the top 5 %, so the 10 % cover leaves a margin of two.)

Every line is a :class:`~ma2ml.bench.hard.trainer.TableTrainer` result (index,
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

from ma2ml.bench.hard.definitions import BUILD_SEEDS, TOP1_SEEDS, TOP_SEEDS, TableDefinition
from ma2ml.bench.hard.trainer import TableTrainer, run_jobs
from ma2ml.bench.results import Job, ResultsFile, raw_fingerprint, read_raw
from ma2ml.envs.core.errors import UserError

RewardOfLines = Callable[[dict[str, np.ndarray]], np.ndarray]
"""A reward of result lines given as arrays ``{"index", "val_acc", "flops", "ok"}``."""

SHARD_SIZE = 1000
"""Pipelines per shard file."""


TOP_FRACTION = 0.02
"""Share of the pipelines (by seed-mean reward after the base build) trained with more seeds."""


TOP1_FRACTION = 0.01
"""Share of the pipelines (by their six-seed mean, among the top) trained with more seeds again."""


SECOND_SEED_COVER = 0.10
"""The top pass waits until every pipeline with a first-seed rank in this top share has two seeds."""

ORDER_SEED = 15_2027
"""Seed of the permutation that cuts the space into shards."""


def shards(candidate: TableDefinition) -> list[np.ndarray]:
    """The pipelines of every shard (a fixed random permutation, cut into :data:`SHARD_SIZE` pieces)."""
    perm = np.random.default_rng([ORDER_SEED, *candidate.name.encode()]).permutation(candidate.n_pipelines)
    return [perm[k:k + SHARD_SIZE] for k in range(0, len(perm), SHARD_SIZE)]


def shard_path(out: str | Path, candidate: TableDefinition, k: int | str) -> Path:
    """``<out>/<candidate>-<k:02d>.jsonl`` (``k="top"``, ``"top-1of2"``...: the extra seeds of the
    best pipelines)."""
    return Path(out) / (f"{candidate.name}-{k:02d}.jsonl" if isinstance(k, int) else f"{candidate.name}-{k}.jsonl")


def top_paths(out: str | Path, candidate: TableDefinition) -> list[Path]:
    """Every file of extra seeds of the top (one per top worker)."""
    return sorted(Path(out).glob(f"{candidate.name}-top*.jsonl"))


def line_arrays(lines: Sequence[dict[str, Any]]) -> dict[str, np.ndarray]:
    """Result lines as the arrays a :data:`RewardOfLines` takes."""
    return {"index": np.array([r["index"] for r in lines], dtype=np.int64),
            "val_acc": np.array([r["val_acc"] for r in lines], dtype=np.float64),
            "flops": np.array([r["flops"] for r in lines], dtype=np.float64),
            "ok": np.array([r["status"] == "ok" for r in lines], dtype=bool)}


def base_work(candidate: TableDefinition, out: str | Path, seeds: int = BUILD_SEEDS,
              worker: tuple[int, int] = (0, 1), rank: np.ndarray | None = None) -> Iterator[tuple[ResultsFile, Job]]:
    """Every base job, shard by shard, each pipeline's replicates together; ``worker=(i, n)``: only
    the shards ``k`` with ``k % n == i`` (so ``n`` processes can build disjoint shards at once).
    With ``rank`` (a priority per pipeline, lower first; :func:`first_seed_rank`), the jobs come
    replicate by replicate instead, each replicate's pipelines in that order."""
    i, n = worker
    work: list[tuple[ResultsFile, Job]] = []
    for k, pipelines in enumerate(shards(candidate)):
        if k % n != i:
            continue
        file = ResultsFile(shard_path(out, candidate, k), candidate.fingerprint())
        work += [(file, (int(index), rep)) for index in pipelines for rep in range(seeds)]
    if rank is not None:
        work.sort(key=lambda fj: (fj[1][1], rank[fj[1][0]]))
    yield from work


def first_seed_rank(candidate: TableDefinition, out: str | Path, rewards: Sequence[RewardOfLines],
                    lines: Sequence[dict[str, Any]] | None = None) -> np.ndarray | None:
    """Each pipeline's best rank quantile (0 = best) by its replicate-0 reward under any of
    ``rewards``; ``None`` while replicate 0 is incomplete. ``lines``: the build's lines when
    already read (:func:`read_build`)."""
    lines = [r for r in (read_build(candidate, out) if lines is None else lines) if r["replicate"] == 0]
    n = candidate.n_pipelines
    if len(lines) < n or not rewards:
        return None
    arrays = line_arrays(lines)
    best = np.ones(n)
    for reward in rewards:
        value = np.full(n, -np.inf)
        value[arrays["index"]] = reward(arrays)
        quantile = np.empty(n)
        quantile[np.argsort(-value, kind="stable")] = np.arange(n) / n
        best = np.minimum(best, quantile)
    return best


def import_results(candidate: TableDefinition, out: str | Path, sources: list[str | Path],
                   seeds: int = BUILD_SEEDS) -> int:
    """Copy results of the same space and seeds (e.g. the pilot's) into the shards; returns how many.

    A source built for another space is refused (its fingerprint line differs).
    """
    fingerprint = json.loads(json.dumps(candidate.fingerprint()))
    found: dict[Job, dict[str, Any]] = {}
    for src in sources:
        if raw_fingerprint(Path(src)) != fingerprint:
            raise UserError(f"{src} was trained for another space than {candidate.name!r}; it cannot seed the build")
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


def read_build(candidate: TableDefinition, out: str | Path) -> list[dict[str, Any]]:
    """Every result line of a build folder (base shards and the top file)."""
    lines: list[dict[str, Any]] = []
    for path in [shard_path(out, candidate, k) for k in range(len(shards(candidate)))] + top_paths(out, candidate):
        if path.exists():
            lines += list(read_raw(path))
    return lines


def top_pipelines(candidate: TableDefinition, out: str | Path, rewards: Sequence[RewardOfLines],
                  fraction: float = TOP_FRACTION, seeds: int = BUILD_SEEDS,
                  cover: float = SECOND_SEED_COVER) -> np.ndarray:
    """The pipelines in the top ``fraction`` (a share of the whole space) by their mean reward over
    the ``seeds`` base replicates, under any of ``rewards`` (the union of their tops; sorted
    indices), among the pipelines that have all ``seeds``.

    A reward maps result arrays ``{"index", "val_acc", "flops", "ok"}`` to rewards. Refuses until
    every pipeline whose first-seed rank (:func:`first_seed_rank`) lies in the top ``cover`` has
    all its base seeds.
    """
    everything = read_build(candidate, out)
    lines = [r for r in everything if r["replicate"] < seeds]
    n = candidate.n_pipelines
    rank = first_seed_rank(candidate, out, rewards, everything)
    if rank is None:
        raise UserError(f"the base build of {candidate.name!r} is incomplete: replicate 0 of "
                         f"{sum(r['replicate'] == 0 for r in lines)} of {n} pipelines")
    arrays = line_arrays(lines)
    count = np.bincount(arrays["index"], minlength=n)
    missing = int(((rank < cover) & (count < seeds)).sum())
    if missing:
        raise UserError(f"the base build of {candidate.name!r} is incomplete: {missing} pipelines with a "
                         f"first-seed rank in the top {cover:.0%} lack some of their {seeds} base seeds")
    return _union_top(arrays, rewards, count >= seeds, seeds, fraction)


def _union_top(arrays: dict[str, np.ndarray], rewards: Sequence[RewardOfLines], eligible: np.ndarray, seeds: int,
               fraction: float) -> np.ndarray:
    """The union over ``rewards`` of the top ``fraction`` (of the whole space) of the ``eligible``
    pipelines by their mean reward over ``seeds`` replicates (``arrays``: their result lines)."""
    n = len(eligible)
    k = max(int(np.ceil(fraction * n)), 1)
    top: set[int] = set()
    for reward in rewards:
        mean = np.where(eligible, np.bincount(arrays["index"], weights=reward(arrays), minlength=n) / seeds, -np.inf)
        top |= set(np.argsort(-mean, kind="stable")[:k].tolist())
    return np.array(sorted(top), dtype=np.int64)


def top_work(candidate: TableDefinition, out: str | Path, pipelines: np.ndarray, seeds: int = BUILD_SEEDS,
             extra: int = TOP_SEEDS, worker: tuple[int, int] = (0, 1)) -> Iterator[tuple[ResultsFile, Job]]:
    """The extra replicates of the top pipelines not yet in any top file; ``worker=(i, n)``: those at
    positions ``p % n == i``, into ``<out>/<candidate>-top.jsonl`` (``-top-<i>of<n>.jsonl`` for
    ``n > 1``)."""
    i, n = worker
    done = set().union(*(ResultsFile(p, candidate.fingerprint()).done for p in top_paths(out, candidate)))
    file = ResultsFile(shard_path(out, candidate, "top" if n == 1 else f"top-{i}of{n}"), candidate.fingerprint())
    for p, index in enumerate(pipelines):
        if p % n != i:
            continue
        for rep in range(seeds, seeds + extra):
            if (int(index), rep) not in done:
                yield file, (int(index), rep)


def top1_pipelines(candidate: TableDefinition, out: str | Path, rewards: Sequence[RewardOfLines],
                   fraction: float = TOP1_FRACTION, seeds: int = BUILD_SEEDS + TOP_SEEDS) -> np.ndarray:
    """Among :func:`top_pipelines` (which must all have their ``seeds`` replicates), those in the top
    ``fraction`` of the space by their mean over ``seeds`` replicates under any of ``rewards``."""
    chosen = top_pipelines(candidate, out, rewards)
    lines = [r for r in read_build(candidate, out) if r["replicate"] < seeds]
    n = candidate.n_pipelines
    arrays = line_arrays(lines)
    count = np.bincount(arrays["index"], minlength=n)
    missing = int((count[chosen] < seeds).sum())
    if missing:
        raise UserError(f"the top of {candidate.name!r} is incomplete: {missing} of its {len(chosen)} pipelines "
                         f"lack some of their {seeds} seeds")
    inside = np.zeros(n, dtype=bool)
    inside[chosen] = True
    return _union_top(arrays, rewards, inside, seeds, fraction)


def run_build(candidate: TableDefinition, out: str | Path, seeds: int = BUILD_SEEDS, limit: int | None = None,
              top: Sequence[RewardOfLines] = (), worker: tuple[int, int] = (0, 1), stage: str = "all") -> int:
    """Train the missing base jobs (at most ``limit``; ``worker``: see :func:`base_work`), then, when
    ``top`` rewards are given and the base is far enough (see :func:`top_pipelines`), the extra
    seeds of their tops. ``stage``: ``"all"``, ``"base"`` or ``"top"`` (only that part). Returns
    how many were trained.

    The first of ``top`` is the benchmark's own reward and goes first: once replicate 0 is
    complete, replicate 1 goes to the pipelines in the top :data:`SECOND_SEED_COVER` by their first
    seed under it (best first), then to the rest in the order of :func:`first_seed_rank` under all
    of ``top``; the top stage refines the first reward's top, then (once every reward's cover has
    its second seed) the union of all their tops, and stops with a message while that cover is
    incomplete."""
    i, n = worker
    if not 0 <= i < n:
        raise UserError(f"worker must be (i, n) with 0 <= i < n, got {worker}")
    if stage not in ("all", "base", "top"):
        raise UserError(f"stage must be one of 'all', 'base', 'top', got {stage!r}")
    trainer = TableTrainer(candidate)
    trained = 0
    if stage != "top":
        lines = read_build(candidate, out)
        rank = first_seed_rank(candidate, out, top, lines)
        if rank is not None:
            primary = first_seed_rank(candidate, out, top[:1], lines)
            rank = np.where(primary < SECOND_SEED_COVER, primary - 1.0, rank)  # the first reward's cover first
        base = list(base_work(candidate, out, seeds, worker, rank=rank))
        todo = [(trainer, f, job) for f, job in base if job not in f.done]
        print(f"build {candidate.name}: {len(base)} base trainings, {len(todo)} to do", flush=True)
        try:
            trained = run_jobs(todo[:limit])
        finally:
            for f in {id(f): f for f, _ in base}.values():
                f.close()
    if not top or stage == "base":
        return trained
    steps = [(rewards, tier) for rewards in (([top[0]], list(top)) if len(top) > 1 else ([top[0]],))
             for tier in ("top", "top1")]
    for rewards, tier in steps:
        if limit is not None and trained >= limit:
            break
        try:
            if tier == "top":
                pipelines, first, extra_seeds = top_pipelines(candidate, out, rewards, seeds=seeds), seeds, TOP_SEEDS
            else:
                pipelines, first, extra_seeds = top1_pipelines(candidate, out, rewards), seeds + TOP_SEEDS, TOP1_SEEDS
        except ValueError as exc:
            print(f"build {candidate.name}: top stage stops here: {exc}", flush=True)
            break
        extra = list(top_work(candidate, out, pipelines, first, extra_seeds, worker=worker))
        print(f"build {candidate.name}: {len(extra)} {tier} trainings to do for the "
              f"{'first reward' if len(rewards) == 1 else 'union of every reward'}", flush=True)
        try:
            trained += run_jobs([(trainer, f, job) for f, job in (extra if limit is None else extra[:limit - trained])])
        finally:
            if extra:
                extra[0][0].close()
    return trained
