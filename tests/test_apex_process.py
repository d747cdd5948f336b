"""Ape-X on the real command line: Ctrl-C, a killed actor, resume, and bad input."""
import os
import signal
import subprocess
import sys

import pytest
import torch

from apex.train import cli
from tests.helpers import (ROOT, children_of, interrupt_like_a_terminal, logged_updates, one_error_line,
                           processes_in_group, shm_entries, start_training, wait_for)

FAST = ["--env-id", "CartPole-v1", "--num-workers", "2", "--eval-interval-seconds", "1",
        "--log-interval-seconds", "0.5"]


def child_pids(pid):
    return [child for child, cmd in children_of(pid) if "spawn_main" in cmd]


def test_ctrl_c_saves_a_checkpoint_and_leaves_nothing_behind(tmp_path):
    shm_before = shm_entries()
    proc = start_training("apex.train", *FAST, "--run-dir", str(tmp_path / "run"), log=tmp_path / "log")
    assert wait_for(lambda: len(child_pids(proc.pid)) >= 3, 60), "actors and evaluator start"
    assert wait_for(lambda: logged_updates(tmp_path / "run")[-1:] > [0], 60), "the learner is updating"
    log = interrupt_like_a_terminal(proc, tmp_path / "log")
    assert shm_entries() <= shm_before, "no /dev/shm segment is left"
    payload = torch.load(sorted((tmp_path / "run").glob("ckpt-*.pt"))[-1], weights_only=True)
    assert payload["meta"]["algo"] == "apex" and payload["updates"] > 0
    assert set(payload) >= {"model", "target", "optimizer", "counters", "wall_seconds"}
    assert "saved the replay" in log and len(list((tmp_path / "run").glob("replay-*.bin"))) == 1


def test_a_killed_actor_is_restarted_and_the_learner_goes_on(tmp_path):
    run = tmp_path / "run"
    proc = start_training("apex.train", *FAST, "--max-seconds", "12", "--run-dir", str(run), log=tmp_path / "log")
    assert wait_for(lambda: len(child_pids(proc.pid)) >= 3, 60)
    assert wait_for(lambda: logged_updates(run)[-1:] > [0], 30), "the learner is updating"
    actors = sorted(child_pids(proc.pid))[:2]  # started before the evaluator
    victim = actors[0]
    os.kill(victim, signal.SIGKILL)
    assert wait_for(lambda: victim not in child_pids(proc.pid) and len(child_pids(proc.pid)) >= 3, 15), \
        "a replacement starts"
    proc.wait(timeout=60)
    log = (tmp_path / "log").read_text()
    assert proc.returncode == 0, log
    assert f"(pid {victim}) died with exit code -9" in log and "restarting it" in log
    assert "worker restarts 1" in log
    updates = logged_updates(run)
    assert updates[-1] > updates[len(updates) // 2] > 0, "the learner kept updating"
    assert wait_for(lambda: not processes_in_group(proc.pid), 5), "no process of the run is left"


def test_serial_resume_continues_counters(tmp_path):
    run = tmp_path / "run"
    common = ["--serial", "--eval-interval-seconds", "0", "--learning-starts", "300"]
    first = subprocess.run([sys.executable, "-m", "apex.train", *common, "--total-steps", "1600",
                            "--run-dir", str(run)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    before = torch.load(sorted(run.glob("ckpt-*.pt"))[-1], weights_only=True)
    second = subprocess.run([sys.executable, "-m", "apex.train", "--resume", str(run), "--total-steps", "3200"],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert second.returncode == 0, second.stderr
    assert "resumed from" in second.stdout
    after = torch.load(sorted(run.glob("ckpt-*.pt"))[-1], weights_only=True)
    assert before["counters"]["steps"].sum() == 1600 and after["counters"]["steps"].sum() == 3200
    assert after["updates"] > before["updates"] > 0
    assert after["optimizer"]["state"][0]["step"] > before["optimizer"]["state"][0]["step"]


@pytest.mark.parametrize("argv, expected", [
    (["--env-id", "NoSuchEnv-v0"], "unknown or unusable env id"),
    (["--num-workers", "0"], "--num-workers must be positive"),
    (["--lr", "-0.001"], "--lr must be positive"),
    (["--batch-size", "0"], "--batch-size must be positive"),
    (["--target-tau", "2"], "--target-tau must be in [0, 1]"),
    (["--device", "tpu"], "invalid choice"),
    (["--n-step", "three"], "invalid int value"),
    (["--resume", "/nonexistent/run"], "cannot resume"),
    (["--learner-threads", "0"], "--learner-threads must be positive"),
])
def test_bad_input_gives_one_clear_line(capsys, argv, expected):
    assert expected in one_error_line(cli, capsys, argv)


def test_the_learner_takes_the_torch_threads_it_is_given(tmp_path):
    """The train process keeps torch to one thread unless --learner-threads gives the learner more."""
    try:
        for threads in (2, 1):
            assert cli(["--serial", "--total-steps", "200", "--eval-interval-seconds", "0", "--learner-threads",
                        str(threads), "--run-dir", str(tmp_path / str(threads))]) == 0
            assert torch.get_num_threads() == threads
    finally:
        torch.set_num_threads(1)


def test_mismatched_and_corrupt_checkpoints_are_refused(tmp_path, capsys):
    run = tmp_path / "run"
    assert cli(["--serial", "--total-steps", "200", "--eval-interval-seconds", "0", "--run-dir", str(run)]) == 0
    capsys.readouterr()
    assert "holds a network of other shapes" in one_error_line(cli, capsys, ["--resume", str(run), "--hidden-size", "32"])
    assert "was made for algo 'dqn'" in one_error_line(cli, capsys, ["--resume", str(run), "--serial", "false"])
    checkpoint = sorted(run.glob("ckpt-*.pt"))[-1]
    checkpoint.write_bytes(checkpoint.read_bytes()[:100])
    assert "corrupt" in one_error_line(cli, capsys, ["--resume", str(checkpoint)])


def test_exit_status_stderr_and_help():
    result = subprocess.run([sys.executable, "-m", "apex.train", "--envs-per-actor", "0"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "python -m apex.train: error: --envs-per-actor must be positive, got 0"]
    result = subprocess.run([sys.executable, "-m", "apex.train", "--help"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert "--serial" in result.stdout and "--target-tau" in result.stdout and "--samples-per-insert" in result.stdout
