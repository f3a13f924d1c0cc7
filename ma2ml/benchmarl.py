"""ma2ml's table envs as a BenchMARL task: run BenchMARL's algorithms (MAPPO, IPPO, QMIX, VDN, IQL, MASAC...)
and its fine-tuned configs on the AutoML game, in the batched TorchRL token env.

    from benchmarl.experiment import Experiment, ExperimentConfig
    from ma2ml.benchmarl import Ma2mlTask

    task = Ma2mlTask.of("ma2ml/AutoML-DigitsHard-v0", table_seed=0)
    config = ExperimentConfig.get_from_yaml()
    config.max_n_frames = task.frames(300)          # 300 evaluations, ma2ml's budget, in BenchMARL's frames

One episode of the token game (:mod:`ma2ml.envs.token_v0`) is one pipeline, so **one evaluation = one episode
= ``steps`` frames** (every agent picks one token per step; the table's reward comes on the last step):
:meth:`Ma2mlTask.frames` turns an evaluation budget into ``max_n_frames``, and :meth:`Ma2mlTask.evaluations`
turns frames back. The env is :func:`ma2ml.envs.torchrl_env.table_env` (the batched lookups, not PettingZoo's
one-game-at-a-time path): BenchMARL's ``n_envs_per_worker`` games run as one tensor batch. Its group is
``"agents"`` (the module agents, in order), the per-agent keys are ``("agents", "observation")`` and
``("agents", "action_mask")``, and the global ``"state"`` (the task descriptor, the step and every chosen
token) is there for QMIX-style mixers and centralized critics.

BenchMARL is an optional extra (``pip install -e ".[benchmarl]"``); it pins ``torchrl<0.12``, and this
package's TorchRL learners are tested on that version too (docs/marl.md).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ma2ml.envs.core.errors import UserError

BENCHMARL_HINT = 'the BenchMARL task needs BenchMARL (benchmarl>=1.5): pip install -e ".[benchmarl]"'
"""What to do when BenchMARL is missing."""

try:
    from benchmarl.environments.common import TaskClass
except ImportError as _exc:  # one clear line instead of a traceback into an optional extra
    raise UserError(f"{BENCHMARL_HINT} ({_exc})") from None

from torchrl.data import Composite  # noqa: E402  (BenchMARL brings TorchRL)
from torchrl.envs import EnvBase  # noqa: E402


class Ma2mlTask(TaskClass):
    """A registered ma2ml table env (its id and arguments in ``config``: ``{"env": ID, "env_args": {...}}``) as a
    BenchMARL task on the token view; see the module docstring."""

    @classmethod
    def of(cls, env: str = "ma2ml/AutoML-DigitsBench-v0", name: str | None = None, **env_args: Any) -> Ma2mlTask:
        """The task of env id ``env`` made with ``env_args`` (e.g. ``table_seed=0``); checked now (one
        ``UserError`` for an unknown id or argument)."""
        task = cls(name=name or env.split("/")[-1], config={"env": env, "env_args": dict(env_args)})
        task.steps()  # makes the env once: a bad id or argument fails here
        return task

    def get_env_fun(self, num_envs: int, continuous_actions: bool, seed: int | None,
                    device: Any) -> Callable[[], EnvBase]:
        from ma2ml.envs.torchrl_env import table_env

        env, env_args = self.config["env"], dict(self.config.get("env_args", {}))
        return lambda: table_env(num_envs, view="token", env=env, seed=seed, device=device, **env_args)

    def supports_continuous_actions(self) -> bool:
        return False

    def supports_discrete_actions(self) -> bool:
        return True

    def has_render(self, env: EnvBase) -> bool:
        return False

    def max_steps(self, env: EnvBase) -> int:
        return int(env.layout.steps)

    def group_map(self, env: EnvBase) -> dict[str, list[str]]:
        return {"agents": list(env.layout.agents)}

    def state_spec(self, env: EnvBase) -> Composite | None:
        return Composite({"state": env.full_observation_spec_unbatched["state"].clone()})

    def _agents_spec(self, env: EnvBase, keep: str) -> Composite:
        spec = env.full_observation_spec_unbatched.clone()
        del spec["state"]
        for key in list(spec["agents"].keys()):
            if key != keep:
                del spec["agents", key]
        return spec

    def observation_spec(self, env: EnvBase) -> Composite:
        return self._agents_spec(env, "observation")

    def action_mask_spec(self, env: EnvBase) -> Composite | None:
        return self._agents_spec(env, "action_mask")

    def info_spec(self, env: EnvBase) -> Composite | None:
        return None

    def action_spec(self, env: EnvBase) -> Composite:
        return env.full_action_spec_unbatched

    @staticmethod
    def env_name() -> str:
        return "ma2ml"

    # -- ma2ml's budget in BenchMARL's frames --------------------------------------------------------
    def steps(self) -> int:
        """Frames of one episode: the token game's steps (one evaluation); read once from the pipeline env's
        token layout (no batched env, no reward table)."""
        if getattr(self, "_steps", None) is None:
            from ma2ml.envs.registration import make_parallel
            from ma2ml.envs.token_v0 import TokenLayout

            env = make_parallel(self.config["env"], **self.config.get("env_args", {}))
            try:
                self._steps = TokenLayout.of(env).steps
            finally:
                env.close()
        return self._steps

    def frames(self, evaluations: int) -> int:
        """BenchMARL's ``max_n_frames`` for a budget of ``evaluations`` pipelines."""
        if isinstance(evaluations, bool) or not isinstance(evaluations, int) or evaluations < 1:
            raise UserError(f"evaluations must be an integer >= 1, got {evaluations!r}")
        return evaluations * self.steps()

    def evaluations(self, frames: int) -> int:
        """The pipelines ``frames`` frames evaluated (whole episodes)."""
        return int(frames) // self.steps()
