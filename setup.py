"""asyncrl: asynchronous (A3C family) and replay-based (Ape-X, R2D2) deep RL on one workstation."""
from setuptools import setup

setup(
    name="asyncrl",
    version="0.1.0",
    description="Asynchronous and distributed-replay deep RL on one many-core workstation and one GPU",
    packages=["a3c", "apex", "r2d2", "ngu", "agent57", "common", "common.replay", "common.distributed", "benchmarks"],
    python_requires=">=3.10",
    install_requires=[
        # torch is installed first by the Makefile (the CPU wheel, or whatever build is already present);
        # the loose bound here never pulls a second copy.
        "torch>=2.1",
        "gymnasium>=1.0",
        "ale-py>=0.10",
        "numpy>=1.24",
        "numba>=0.59",
        "opencv-python>=4.8",
        "matplotlib>=3.7",
        "tensorboard>=2.14",
    ],
    extras_require={
        "dev": ["pytest>=7", "pytest-timeout>=2.1", "hypothesis>=6", "minatar>=1.0.15"],
        "minatar": ["minatar>=1.0.15"],
        # More than one machine (--backend ray): Ray's actors, object store and cluster, rather than a
        # transport of our own.
        "ray": ["ray>=2.9"],
        "bench": ["cpprb>=10", "envpool>=0.8", "stable-baselines3>=2.0"],
    },
)
