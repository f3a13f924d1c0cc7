"""The hard benchmark tier and the tables built like it: joint spaces where coordination between the
module agents decides the result, their game statistics and their resumable, sharded build
(docs/benchmark.md; how the space was chosen: docs/hard_benchmark_pilot.md, whose pilot code lives
with its scripts in ``benchmarks/``).

* :mod:`~ma2ml.bench.hard.spaces`: NAS with width / depth / resolution, HPO with epochs,
  AUG with a searched strength;
* :mod:`~ma2ml.bench.hard.definitions`: the built tables' joint spaces (``combined``, the hard tier's;
  ``mnist`` and ``shapes``, the suite's), their rewards (accuracy x inference-FLOPs term x training
  budget) and seeds;
* :mod:`~ma2ml.bench.hard.game`: game statistics of a reward table (best responses,
  equilibria, the additive model's best, random search);
* :mod:`~ma2ml.bench.hard.trainer`: training pipelines into raw results files (:mod:`ma2ml.bench.results`);
* :mod:`~ma2ml.bench.hard.sharded`: the resumable, sharded build of every table since the hard tier;
* :mod:`~ma2ml.bench.hard.tables`: the packaged tables' specs and their compaction from a build
  (their properties: :func:`ma2ml.bench.properties.hard_stats`).
"""
