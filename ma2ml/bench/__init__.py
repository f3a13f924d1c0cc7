"""The benchmark tables: exhaustive tables of real training results and the evaluator that answers from them.

* :mod:`~ma2ml.bench.space`: the space and budget (task ``digits-bench``, 5,184
  pipelines) and the numbering of pipelines;
* :mod:`~ma2ml.bench.results`: the raw results files every build writes, and the platform each
  result was trained on;
* :mod:`~ma2ml.bench.digits_build`: the frozen ``digits`` table's build recipe (``ma2ml bench build``);
  every later table is built by :mod:`~ma2ml.bench.hard.sharded` (:mod:`ma2ml.bench.hard`);
* :mod:`~ma2ml.bench.table`: the table file (validated at load) and
  :class:`TableEvaluator`, which answers from it behind the env API;
* :mod:`~ma2ml.bench.properties`: every table's published statistics (``ma2ml bench info``);
* :mod:`~ma2ml.bench.synthetic`: a synthetic cooperative game with a known optimum
  (for learner tests), imported on its own.

The env ids are registered by :mod:`ma2ml.envs.digitsbench_v0`.
"""
from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    **{name: "ma2ml.bench.digits_build" for name in ("build_jobs", "compact", "run_build")},
    **{name: "ma2ml.bench.results" for name in ("BUILD_THREADS", "KERNEL_FIELDS", "PLATFORM_ENV_VARS", "ResultsFile",
                                                  "build_platform", "check_table_path", "platform_mismatch",
                                                  "read_raw")},
    **{name: "ma2ml.bench.space" for name in ("BENCH_BUDGET", "BENCH_FLOPS_CONSTRAINT", "EXTRA_FRACTION", "EXTRA_SEEDS",
                                                "SUBSET_SEED", "TASK_NAME", "bench_spaces", "bench_task", "extra_subset",
                                                "joint_nvec", "pipeline_index", "pipeline_seed", "pipeline_tokens",
                                                "space_fingerprint")},
    **{name: "ma2ml.bench.properties" for name in ("describe_searched", "format_stats", "table_stats",
                                                "unexplained_share")},
    **{name: "ma2ml.bench.table" for name in ("TABLE_PATH", "Lookup", "Table", "TableEvaluator", "load_table",
                                                "table_layout")},
}
"""Public names and their modules, imported on first use (a table env never loads the builder)."""

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
