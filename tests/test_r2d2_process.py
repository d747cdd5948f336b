"""R2D2 as a run: actor processes and the learner, the diagnostic log, a killed actor, Ctrl-C, resume,
bad input, and an ALE smoke run."""
import csv
import gc
import math
import os

import pytest
import torch

from r2d2.config import make_config
from r2d2.envs import ENV_ID
from r2d2.train import cli, main
from tests.helpers import (children_of, finite_model, killed_actor_then_ctrl_c, left_behind, one_error_line,
                           shm_entries)

SMALL = {"env_id": ENV_ID, "num_workers": 2, "envs_per_actor": 2, "learning_starts": 16, "batch_size": 8,
         "lstm_size": 16, "hidden_size": 16, "diagnostic_interval": 5, "samples_per_insert": 0.0,
         "sequence_length": 8, "sequence_overlap": 4, "burn_in": 4}


def test_actor_processes_feed_the_learner_and_leave_nothing_behind(tmp_path):
    shm_before = shm_entries()
    # 15 s: at a load of 5-6 on two cores, starting the processes alone took most of an 8 s budget
    summary = main(make_config({**SMALL, "max_seconds": 15.0, "eval_interval_seconds": 2.0, "eval_episodes": 3,
                                "run_dir": str(tmp_path)}))
    assert summary.stop_reason.startswith("reached --max-seconds")
    assert finite_model(summary.checkpoint)["updates"] > 10
    assert summary.eval_means, "the evaluator ran"
    rows = list(csv.DictReader(open(tmp_path / "q_discrepancy.csv")))
    assert rows and all(math.isfinite(float(row["loss"])) for row in rows)
    measured = [float(row["dq_stored"]) for row in rows if row["dq_stored"] != "nan"]
    assert measured and all(0 <= value < 10 for value in measured)
    assert all("resource_tracker" in cmd for _, cmd in children_of(os.getpid()))
    gc.collect()  # the replay's locks are named semaphores, gone once their objects are
    assert not left_behind(shm_before), "no shared array or lock is left"


def test_a_killed_actor_is_restarted_and_ctrl_c_saves_and_exits(tmp_path):
    payload = killed_actor_then_ctrl_c("r2d2.train", ENV_ID, tmp_path)
    assert payload["meta"]["algo"] == "r2d2" and payload["updates"] > 0


def test_serial_resume_continues_counters(tmp_path):
    base = {**SMALL, "serial": True, "num_workers": 1, "eval_interval_seconds": 0.0, "run_dir": str(tmp_path)}
    first = main(make_config({**base, "total_steps": 800}))
    before = torch.load(first.checkpoint, weights_only=True)
    second = main(make_config({"resume": str(tmp_path), "total_steps": 1600}))
    after = torch.load(second.checkpoint, weights_only=True)
    assert before["counters"]["steps"].sum() == 800 and after["counters"]["steps"].sum() == 1600
    assert after["updates"] > before["updates"] > 0


@pytest.mark.parametrize("argv, expected", [
    (["--env-id", "NoSuchEnv-v0"], "unknown or unusable env id"),
    (["--burn-in", "80"], "--burn-in 80 leaves nothing"),
    (["--sequence-overlap", "80"], "--sequence-overlap 80 must be below"),
    (["--eta", "2"], "--eta must be in [0, 1]"),
    (["--resume", "/nonexistent/run"], "cannot resume"),
])
def test_bad_input_gives_one_clear_line(capsys, argv, expected):
    assert expected in one_error_line(cli, capsys, argv)


def test_atari_smoke(tmp_path):
    cfg = make_config({"env_id": "ALE/Pong-v5", "serial": True, "num_workers": 1, "envs_per_actor": 2,
                       "total_steps": 300, "sequence_length": 20, "sequence_overlap": 10, "burn_in": 10,
                       "learning_starts": 8, "batch_size": 4, "replay_capacity": 64, "lstm_size": 32,
                       "hidden_size": 32, "diagnostic_interval": 2, "eval_interval_seconds": 0.0,
                       "run_dir": str(tmp_path)})
    summary = main(cfg)
    assert summary.env_steps >= 300
    payload = finite_model(summary.checkpoint)
    assert payload["updates"] > 0
    assert payload["model"]["torso.conv1.weight"].shape == (16, 4, 8, 8)
    assert payload["model"]["lstm.weight_ih_l0"].shape == (4 * 32, 32 + 6 + 1)  # features, one-hot action, reward
