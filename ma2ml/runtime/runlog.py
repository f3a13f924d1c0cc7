"""One run's evaluations through an evaluation store (:class:`RunLog`): evaluations answered from the
store when a resumed run asks the same pipeline at a stored index, from the cache when
``cache=True``, else run through the evaluator (its executor) and stored one by one as they finish.
See :mod:`ma2ml.runtime.store` for the schema and the guarantees.
"""
from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ma2ml.envs.core.errors import UserError
from ma2ml.envs.core.evaluator import Evaluator
from ma2ml.envs.core.records import Actions, EvalRecord, checked_batch, checked_tokens
from ma2ml.runtime.store import EvalStore, StoredEvaluation, StoreError, canonical_json, run_settings, settings_hash


class RunLog:
    """One run's evaluations through a store (see the module docstring).

    ``seed_policy`` names how training seeds are chosen (e.g. ``"fixed:0"`` or ``"drawn"``);
    it is part of the settings, so a cached record is only reused under the same policy.
    """

    def __init__(
        self,
        store: EvalStore,
        evaluator: Evaluator,
        run_id: str | None = None,
        env_id: str = "",
        seed_policy: str = "drawn",
        cache: bool = False,
        config: Mapping[str, Any] | None = None,
    ) -> None:
        self.store = store
        self.evaluator = evaluator
        self.cache = cache
        self.settings_hash = store.add_settings(run_settings(evaluator, seed_policy))
        self.run_id = run_id if run_id is not None else uuid.uuid4().hex[:12]
        legacy = run_settings(evaluator, seed_policy, legacy=True) if store.has_run(self.run_id) else None
        if legacy is not None and store.run(self.run_id).settings_hash == settings_hash(legacy):
            self.settings_hash = settings_hash(legacy)  # recorded before a key field existed, same records
        self.run = store.open_run(self.run_id, env_id, self.settings_hash, config)
        self.position = 0
        """Index of the next evaluation of the run."""
        self.on_record: Callable[[int, EvalRecord], None] | None = None
        """Called with (index, record) as each evaluation of a batch is answered (progress bars)."""

    def _answered(self, index: int, record: EvalRecord) -> None:
        if self.on_record is not None:
            self.on_record(index, record)

    def seek(self, position: int) -> None:
        """Continue the run at evaluation ``position`` (e.g. the count a restored learner was told)."""
        if position < 0:
            raise UserError(f"position must be >= 0, got {position}")
        self.position = position

    def records(self) -> list[StoredEvaluation]:
        """This run's stored evaluations, by index."""
        return self.store.evaluations(self.run_id)

    def evaluate_batch(self, batch: Sequence[Actions], seeds: Sequence[int]) -> list[EvalRecord]:
        """Evaluate a batch as the run's next evaluations; each record is stored as it finishes.

        Indices already stored (a resumed run) are answered from the store, cached pipelines
        from earlier records; the rest run through ``evaluator.iter_batch`` (its executor).
        Bad input raises ``ValueError`` before anything is evaluated or written.
        """
        batch, seeds = checked_batch(batch, seeds)
        keys, tokens = [], []  # the one validation of each joint action on its way to the evaluator
        for i, actions in enumerate(batch):
            try:
                tokens.append(checked_tokens(self.evaluator.spaces, actions))
            except ValueError as exc:
                raise UserError(f"batch item {i}: {exc}") from None
            keys.append(canonical_json(tokens[-1]))
        start, submitted = self.position, time.time()
        out: list[EvalRecord | None] = [None] * len(batch)
        groups: list[list[int]] = []  # positions one training answers (a pipeline asked twice, with the cache)
        by_key: dict[str, list[int]] = {}
        for i, key in enumerate(keys):
            stored = self.store.get(self.run_id, start + i)
            if stored is not None:
                if stored.key != key:
                    raise StoreError(
                        f"evaluation store {self.store.path}: run {self.run_id!r} holds another pipeline at "
                        f"evaluation {start + i}; a resumed run must ask the same pipelines (restore the "
                        "learner's checkpoint and seek() to its position) or use a new run id")
                out[i] = stored.record
                self.evaluator.replay(tokens[i], stored.record)  # an evaluator with draws catches up
                self._answered(start + i, stored.record)
                continue
            hit = self.store.lookup(self.settings_hash, key) if self.cache else None
            if hit is not None:
                self.store.put(self.run_id, start + i, self.settings_hash, key, hit.record, submitted, hit.id)
                out[i] = hit.record
                self._answered(start + i, hit.record)
            elif self.cache and key in by_key:
                by_key[key].append(i)
            else:
                groups.append([i])
                by_key[key] = groups[-1]
        heads = [group[0] for group in groups]
        for j, record in self.evaluator.iter_batch([tokens[i] for i in heads], [seeds[i] for i in heads],
                                                       checked=True):
            first, *copies = groups[j]
            row = self.store.put(self.run_id, start + first, self.settings_hash, keys[first], record, submitted)
            for i in copies:
                self.store.put(self.run_id, start + i, self.settings_hash, keys[i], record, submitted, row)
            for i in groups[j]:
                out[i] = record
                self._answered(start + i, record)
        self.position = start + len(batch)
        return out  # type: ignore[return-value]  (every position is filled)
