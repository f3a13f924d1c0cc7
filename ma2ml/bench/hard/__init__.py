"""The hard benchmark tier (issue 15): spaces where coordination between the module agents
decides the result, their pilot analysis and the resumable build of the chosen one
(docs/hard_benchmark_pilot.md).

* :mod:`~ma2ml.bench.hard.spaces`: NAS with width / depth / resolution, HPO with epochs,
  AUG with a searched strength;
* :mod:`~ma2ml.bench.hard.candidates`: the candidate spaces, the chosen one and its reward;
* :mod:`~ma2ml.bench.hard.reward`: accuracy x inference-FLOPs term x training budget;
* :mod:`~ma2ml.bench.hard.game`: game statistics of a reward table (best responses,
  equilibria, the additive model's best, random search);
* :mod:`~ma2ml.bench.hard.runner`: training pipelines into resumable JSON-lines files;
* :mod:`~ma2ml.bench.hard.pilot`: the pilot's surrogate-based estimates;
* :mod:`~ma2ml.bench.hard.build`: the resumable, sharded build.
"""
