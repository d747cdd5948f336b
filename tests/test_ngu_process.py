"""NGU and Agent57 as R2D2 is held to it: actor processes and the learner leave nothing behind, a killed
actor is restarted and Ctrl-C saves, serial mode is deterministic and resumes (Agent57's bandits with
it), bad input gets one line, Atari runs."""
import gc
import os

import pytest
import torch

import agent57.train
import ngu.train
from common.chain import ENV_ID
from tests.helpers import (children_of, finite_model, killed_actor_then_ctrl_c, left_behind, one_error_line,
                           shm_entries)

SMALL = {"env_id": ENV_ID, "num_workers": 2, "envs_per_actor": 2, "learning_starts": 16, "batch_size": 8,
         "lstm_size": 16, "hidden_size": 16, "samples_per_insert": 0.0, "num_policies": 10,
         "sequence_length": 8, "sequence_overlap": 4, "burn_in": 4, "episodic_capacity": 64}
FAMILIES = {"ngu": ngu.train, "agent57": agent57.train}


@pytest.mark.parametrize("family", FAMILIES)
def test_actor_processes_feed_the_learner_and_leave_nothing_behind(family, tmp_path):
    train = FAMILIES[family]
    shm_before = shm_entries()
    summary = train.main(train.make_config({**SMALL, "max_seconds": 15.0, "eval_interval_seconds": 2.0, "eval_episodes": 3,
                                "run_dir": str(tmp_path)}))
    assert summary.stop_reason.startswith("reached --max-seconds")
    payload = finite_model(summary.checkpoint)
    assert payload["updates"] > 10 and payload["meta"]["algo"] == family
    assert payload["model"]["rnd.obs_count"] > 0, "RND's observation statistics were fed"
    assert summary.eval_means, "the evaluator ran"
    assert all("resource_tracker" in cmd for _, cmd in children_of(os.getpid()))
    gc.collect()  # the replay's locks are named semaphores, gone once their objects are
    assert not left_behind(shm_before), "no shared array or lock is left"


@pytest.mark.parametrize("family", FAMILIES)
def test_a_killed_actor_is_restarted_and_ctrl_c_saves_and_exits(family, tmp_path):
    payload = killed_actor_then_ctrl_c(f"{family}.train", ENV_ID, tmp_path)
    assert payload["meta"]["algo"] == family and payload["updates"] > 0 and "aux_optimizer" in payload


@pytest.mark.parametrize("family", FAMILIES)
def test_serial_mode_is_deterministic_and_resumes(family, tmp_path):
    train = FAMILIES[family]
    base = {**SMALL, "serial": True, "num_workers": 1, "eval_interval_seconds": 0.0}
    runs = [train.main(train.make_config({**base, "total_steps": 800, "run_dir": str(tmp_path / name)}))
            for name in "ab"]
    first, again = (torch.load(run.checkpoint, weights_only=True) for run in runs)
    assert first["updates"] > 0
    for name, tensor in first["model"].items():
        assert torch.equal(tensor, again["model"][name]), name
    resumed = train.main(train.make_config({"resume": str(tmp_path / "a"), "total_steps": 1600}))
    after = torch.load(resumed.checkpoint, weights_only=True)
    assert first["counters"]["steps"].sum() == 800 and after["counters"]["steps"].sum() == 1600
    assert after["updates"] > first["updates"]
    if family == "agent57":  # the bandit went on from where the checkpoint left it
        paid = first["bandits"]["counters"][0, 0]
        assert paid > 10 and after["bandits"]["counters"][0, 0] > paid
        rows = (tmp_path / "a" / "arms.csv").read_text().splitlines()
        assert len(rows) == 1 + int(after["bandits"]["counters"][0, 0]), "every paid episode once in arms.csv"
        assert (tmp_path / "a" / "arms.png").stat().st_size > 1000


@pytest.mark.parametrize("family, argv, expected", [
    ("ngu", ["--env-id", "NoSuchEnv-v0"], "unknown or unusable env id"),
    ("ngu", ["--num-policies", "0"], "--num-policies must be positive"),
    ("ngu", ["--gamma-min", "0.9999"], "--gamma-min 0.9999 is above --gamma"),
    ("ngu", ["--max-modulation", "0.5"], "--max-modulation must be at least 1"),
    ("ngu", ["--retrace-lambda", "1.5"], "--retrace-lambda must be in [0, 1]"),
    ("ngu", ["--resume", "/nonexistent/run"], "cannot resume"),
    ("agent57", ["--env-id", "NoSuchEnv-v0"], "unknown or unusable env id"),
    ("agent57", ["--num-policies", "8"], "--num-policies must be at least 10"),
    ("agent57", ["--gamma-1", "0.5"], "the discounts must fall"),
    ("agent57", ["--bandit-epsilon", "2"], "--bandit-epsilon must be in [0, 1]"),
    ("agent57", ["--eval-policy", "best"], "--eval-policy must be bandit or exploit"),
])
def test_bad_input_gives_one_clear_line(family, capsys, argv, expected):
    assert expected in one_error_line(FAMILIES[family].cli, capsys, argv)


@pytest.mark.parametrize("family", FAMILIES)
def test_atari_smoke(family, tmp_path):
    train = FAMILIES[family]
    cfg = train.make_config({"env_id": "ALE/Pong-v5", "serial": True, "num_workers": 1, "envs_per_actor": 2,
                       "total_steps": 300, "sequence_length": 20, "sequence_overlap": 10, "burn_in": 10,
                       "learning_starts": 8, "batch_size": 4, "replay_capacity": 64, "lstm_size": 32,
                             "hidden_size": 32, "num_policies": 10, "episodic_capacity": 500,
                             "eval_interval_seconds": 0.0, "run_dir": str(tmp_path)})
    summary = train.main(cfg)
    assert summary.env_steps >= 300
    payload = finite_model(summary.checkpoint)
    assert payload["updates"] > 0
    for head in ("q",) if family == "ngu" else ("q_e", "q_i"):
        assert payload["model"][f"{head}.torso.conv1.weight"].shape == (16, 4, 8, 8)
        # features, one-hot action, extrinsic reward, intrinsic reward, one-hot j
        assert payload["model"][f"{head}.lstm.weight_ih_l0"].shape == (4 * 32, 32 + 6 + 1 + 1 + 10)
    assert payload["model"]["embedding.torso.conv1.weight"].shape == (16, 4, 8, 8)
