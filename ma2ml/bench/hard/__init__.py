"""The hard benchmark tier and the tables built like it: joint spaces where coordination between the
module agents decides the result, their game statistics and their resumable, sharded build
(docs/benchmark.md; how the space was chosen: docs/hard_benchmark_pilot.md, whose pilot code lives
with its scripts in ``benchmarks/``).

* :mod:`~ma2ml.bench.hard.spaces`: NAS with width / depth / resolution, HPO with epochs,
  AUG with a searched strength;
* :mod:`~ma2ml.bench.hard.definitions`: the built tables' joint spaces (``combined``, the hard tier's;
  ``mnist`` and ``shapes``, the suite's), their rewards and seeds;
* :mod:`~ma2ml.bench.hard.reward`: accuracy x inference-FLOPs term x training budget;
* :mod:`~ma2ml.bench.hard.game`: game statistics of a reward table (best responses,
  equilibria, the additive model's best, random search);
* :mod:`~ma2ml.bench.hard.runner`: training pipelines into resumable JSON-lines files;
* :mod:`~ma2ml.bench.hard.build`: the resumable, sharded build;
* :mod:`~ma2ml.bench.hard.table`: the hard tier's packaged table, its spec and statistics.
"""
