"""The digits benchmark: an exhaustive table of real training results and its evaluator.

* :mod:`~ma2ml.envs.benchmark.space`: the space and budget (task ``digits-bench``, 5,184
  pipelines) and the numbering of pipelines;
* :mod:`~ma2ml.envs.benchmark.build`: the resumable build of the table from real trainings,
  with the platform each result was trained on;
* :mod:`~ma2ml.envs.benchmark.table`: the table file (validated at load) and
  :class:`TableEvaluator`, which answers from it behind the env API;
* :mod:`~ma2ml.envs.benchmark.stats`: the published statistics;
* :mod:`~ma2ml.envs.benchmark.synthetic`: a synthetic cooperative game with a known optimum
  (for learner tests), imported on its own.

The env ids are registered by :mod:`ma2ml.envs.digitsbench_v0`.
"""
from __future__ import annotations

from ma2ml.envs.benchmark.build import (BUILD_THREADS, KERNEL_FIELDS, PLATFORM_ENV_VARS, build_jobs, build_platform,
                                        check_table_path, compact, platform_mismatch, read_raw, run_build)
from ma2ml.envs.benchmark.space import (BENCH_BUDGET, BENCH_FLOPS_CONSTRAINT, EXTRA_FRACTION, EXTRA_SEEDS, SUBSET_SEED,
                                        TASK_NAME, bench_spaces, bench_task, extra_subset, joint_nvec, pipeline_index,
                                        pipeline_seed, pipeline_tokens, space_fingerprint)
from ma2ml.envs.benchmark.stats import describe_searched, format_stats, table_stats, unexplained_share
from ma2ml.envs.benchmark.table import TABLE_PATH, Lookup, Table, TableEvaluator, load_table, table_layout

__all__ = ["BENCH_BUDGET", "BENCH_FLOPS_CONSTRAINT", "bench_spaces", "bench_task", "EXTRA_FRACTION", "EXTRA_SEEDS", "extra_subset", "joint_nvec", "pipeline_index", "pipeline_seed", "pipeline_tokens", "space_fingerprint", "SUBSET_SEED", "TASK_NAME", "load_table", "Lookup", "Table", "table_layout", "TABLE_PATH", "TableEvaluator", "build_jobs", "build_platform", "BUILD_THREADS", "check_table_path", "compact", "KERNEL_FIELDS", "PLATFORM_ENV_VARS", "platform_mismatch", "read_raw", "run_build", "describe_searched", "format_stats", "table_stats", "unexplained_share"]
