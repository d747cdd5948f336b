"""Ape-X (2 actor processes) and serial DQN learn CartPole-v1; ALE smoke runs of both modes.

An untrained greedy network scores about 10 on CartPole and random actions about 22. The threshold
is out of reach within the budget of a target without the bootstrap, with the wrong sign of discount
or bootstrapping from the wrong network, and of priorities written back to the wrong items (each
was checked once by breaking `apex/loss.py` or `apex/learner.py` by hand).
"""
import os

import pytest
import torch

from apex.config import make_config
from apex.train import main
from tests.helpers import children_of

THRESHOLD = 300.0


@pytest.mark.parametrize("serial", [False, True], ids=["apex-2-actors", "serial-dqn"])
def test_learns_cartpole(serial, tmp_path):
    cfg = make_config({"env_id": "CartPole-v1", "num_workers": 2, "serial": serial, "seed": 0,
                       "stop_return": THRESHOLD, "max_seconds": 60.0, "run_dir": str(tmp_path)})
    summary = main(cfg)
    assert summary.best_eval >= THRESHOLD, f"evaluations {summary.eval_means}"
    assert summary.stop_reason.startswith("evaluation mean")
    assert all("resource_tracker" in cmd for _, cmd in children_of(os.getpid()))


@pytest.mark.parametrize("serial", [False, True], ids=["apex", "serial"])
def test_atari_smoke(serial, tmp_path):
    cfg = make_config({"env_id": "ALE/Pong-v5", "serial": serial, "num_workers": 1, "envs_per_actor": 2,
                       "total_steps": 400, "learning_starts": 160, "batch_size": 32, "replay_capacity": 2000,
                       "samples_per_insert": 0.0, "eval_interval_seconds": 0.0, "run_dir": str(tmp_path)})
    summary = main(cfg)
    assert summary.env_steps >= 400
    payload = torch.load(summary.checkpoint, weights_only=True)
    assert payload["updates"] > 0
    assert all(torch.isfinite(t).all() for t in payload["model"].values())
    assert payload["model"]["torso.net.0.weight"].shape == (16, 4, 8, 8)
    assert summary.plot is not None and summary.plot.stat().st_size > 0
