"""The joint-token layout: where each agent's tokens sit when the agents' actions are concatenated.

Every place a joint action crosses an agent boundary goes through one :class:`JointLayout`:
the learners (token rows in, agent dicts out), the Gymnasium joint view and the SB3 ``VecEnv``
(one ``MultiDiscrete`` vector per pipeline), the benchmark table (pipelines numbered in mixed
radix over the joint tokens, last token fastest) and the synthetic game.

    layout = JointLayout.of(env)                      # an env's agents and action spaces
    layout = JointLayout.from_nvec({"aug": [4, 4], "nas": [3, 3, 3, 3], "hpo": [2, 2]})
    rows = layout.join_rows(batch)                    # [{agent: tokens}] -> int64 (n, T)
    batch = layout.split_rows(rows)                   # and back
    index = layout.index(rows)                        # pipeline numbers (mixed radix), checked

``split``/``join`` only move tokens; checking a token against its module's choices is the
module space's job (:meth:`ma2ml.envs.spaces.ModuleSpace.check`), done once per evaluation.
``index`` checks the range, since it is the table's only check.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ma2ml.envs.core.errors import UserError


@dataclass(frozen=True)
class JointLayout:
    """Agents in order and each agent's token sizes (see the module docstring)."""

    agents: tuple[str, ...]
    """The agents, in the order their tokens are concatenated."""
    sizes: tuple[tuple[int, ...], ...]
    """Each agent's token sizes (its ``MultiDiscrete`` nvec), in agent order."""
    tokens: tuple[tuple[str, tuple[Any, ...]], ...] | None = field(default=None, repr=False, compare=False)
    """Optional (name, choices) of every joint column, for error messages (module spaces give them)."""
    nvec: np.ndarray = field(init=False, repr=False, compare=False)
    """All token sizes, concatenated (int64, read-only)."""
    slices: dict[str, slice] = field(init=False, repr=False, compare=False)
    """Agent -> its columns in a joint row."""

    def __post_init__(self) -> None:
        if len(self.agents) != len(self.sizes) or len(set(self.agents)) != len(self.agents):
            raise UserError(f"a joint layout needs distinct agents, one size list each; got {self.agents} "
                             f"with {len(self.sizes)} size lists")
        nvec = np.array([n for s in self.sizes for n in s], dtype=np.int64)
        nvec.setflags(write=False)
        bounds = np.cumsum([0] + [len(s) for s in self.sizes])
        object.__setattr__(self, "nvec", nvec)
        object.__setattr__(self, "slices", {a: slice(int(bounds[i]), int(bounds[i + 1]))
                                            for i, a in enumerate(self.agents)})

    @classmethod
    def from_nvec(cls, nvecs: Mapping[str, Sequence[int] | np.ndarray]) -> JointLayout:
        """From ``{agent: token sizes}`` (dict order is the agent order)."""
        return cls(tuple(nvecs), tuple(tuple(int(n) for n in np.asarray(v).reshape(-1)) for v in nvecs.values()))

    @classmethod
    def of(cls, env: Any) -> JointLayout:
        """An env's layout: ``possible_agents`` and each ``action_space(agent).nvec``."""
        return cls.from_nvec({a: env.action_space(a).nvec for a in env.possible_agents})

    @classmethod
    def of_spaces(cls, spaces: Mapping[str, Any]) -> JointLayout:
        """Module spaces' layout (``{agent: ModuleSpace}``), with every token's name and choices."""
        tokens = tuple((f.name, tuple(f.choices)) for s in spaces.values() for f in s.token_fields)
        base = cls.from_nvec({a: s.nvec for a, s in spaces.items()})
        return cls(base.agents, base.sizes, tokens)

    @property
    def size(self) -> int:
        """Joint tokens per pipeline."""
        return len(self.nvec)

    @property
    def pipelines(self) -> int:
        """Number of joint actions (the product of every token's choices)."""
        return int(np.prod(self.nvec, dtype=object))

    # -- agent dicts <-> joint rows ---------------------------------------------------------------
    def join(self, actions: Mapping[str, Any]) -> np.ndarray:
        """``{agent: tokens}`` -> one int64 row; a wrong agent set or token count is a ``ValueError``."""
        if not isinstance(actions, Mapping) or set(actions) != set(self.agents):
            names = sorted(actions) if isinstance(actions, Mapping) else type(actions).__name__
            raise UserError(f"a joint action names agents {names}; the agents are {list(self.agents)}")
        row = np.concatenate([np.asarray(actions[a], dtype=np.int64).reshape(-1) for a in self.agents])
        if row.shape != self.nvec.shape:
            raise UserError(f"a joint action has {row.size} tokens; the layout has {self.size} "
                             f"({dict(zip(self.agents, map(len, self.sizes)))} per agent)")
        return row

    def join_rows(self, batch: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """A batch of agent dicts -> int64 rows ``(n, T)``."""
        if not len(batch):
            return np.zeros((0, self.size), dtype=np.int64)
        return np.stack([self.join(actions) for actions in batch])

    def split(self, row: Any) -> dict[str, np.ndarray]:
        """One joint row -> ``{agent: tokens}`` (copies)."""
        row = np.asarray(row).reshape(-1)
        if row.shape != self.nvec.shape:
            raise UserError(f"a joint row needs {self.size} tokens, got shape {row.shape}")
        return {a: row[self.slices[a]].copy() for a in self.agents}

    def split_rows(self, rows: Any) -> list[dict[str, np.ndarray]]:
        """Joint rows ``(n, T)`` -> one agent dict each."""
        rows = np.asarray(rows).reshape(-1, self.size) if np.asarray(rows).size else np.zeros((0, self.size))
        return [self.split(row) for row in rows]

    def owner(self, column: int) -> tuple[str, int]:
        """(agent, its token position) of a joint column."""
        for agent in self.agents:
            s = self.slices[agent]
            if s.start <= column < s.stop:
                return agent, column - s.start
        raise IndexError(f"column {column} is outside the layout's {self.size} tokens")

    # -- pipeline numbers --------------------------------------------------------------------------
    def index(self, rows: Any) -> np.ndarray:
        """Pipeline numbers of joint rows ``(B, T)`` (mixed radix, last token fastest); ``ValueError``
        for a wrong shape, non-integer tokens or a token out of range (naming agent and token)."""
        rows = np.asarray(rows)
        if rows.ndim != 2 or rows.shape[1] != self.size:
            raise UserError(f"expected joint token rows of shape (B, {self.size}), got {rows.shape}")
        if rows.size and not np.issubdtype(rows.dtype, np.integer):
            raise UserError(f"joint tokens must be integers, got dtype {rows.dtype}")
        bad = (rows < 0) | (rows >= self.nvec)
        if bad.any():
            row, col = (int(v[0]) for v in np.nonzero(bad))
            agent, token = self.owner(col)
            name, choices = self.tokens[col] if self.tokens is not None else (None, None)
            what = f"token {token} ({name})" if name else f"token {token}"
            also = f" ({list(choices)})" if choices else ""
            raise UserError(f"agent {agent!r}: {what} = {int(rows[row, col])} is out of range; "
                             f"valid values are 0..{self.nvec[col] - 1}{also}")
        return np.ravel_multi_index(tuple(rows.T.astype(np.int64)), tuple(int(n) for n in self.nvec))

    def tokens_at(self, index: int) -> dict[str, np.ndarray]:
        """Inverse of :meth:`index` for one pipeline number."""
        if not 0 <= int(index) < self.pipelines:
            raise UserError(f"pipeline index {index} is out of range; valid values are 0..{self.pipelines - 1}")
        flat = np.array(np.unravel_index(int(index), tuple(int(n) for n in self.nvec)), dtype=np.int64)
        return self.split(flat)

    def all_rows(self) -> np.ndarray:
        """Every joint row, in pipeline-number order ``(pipelines, T)`` (for enumerable layouts)."""
        return np.stack(np.unravel_index(np.arange(self.pipelines), tuple(int(n) for n in self.nvec)), axis=1)
