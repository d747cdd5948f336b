"""Ctrl-C, a killed worker, resume, and bad input, on the real command line."""
import csv
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from a3c.train import cli
from tests.helpers import (ROOT, children_of, interrupt_like_a_terminal, one_error_line, processes_in_group, shm_entries,
                           start_training, wait_for)

FAST = ["--env-id", "CartPole-v1", "--num-workers", "2", "--eval-interval-seconds", "1",
        "--log-interval-seconds", "0.5"]


def worker_pids(pid):
    return [child for child, cmd in children_of(pid) if "spawn_main" in cmd]


def test_ctrl_c_saves_a_checkpoint_and_leaves_nothing_behind(tmp_path):
    shm_before = shm_entries()
    proc = start_training("a3c.train", *FAST, "--run-dir", str(tmp_path / "run"), log=tmp_path / "log")
    assert wait_for(lambda: len(worker_pids(proc.pid)) >= 3, 60), "workers and evaluator start"
    assert wait_for(lambda: (tmp_path / "run" / "metrics.csv").stat().st_size > 200, 60)
    interrupt_like_a_terminal(proc, tmp_path / "log")
    assert shm_entries() <= shm_before, "no /dev/shm segment is left"
    checkpoints = list((tmp_path / "run").glob("ckpt-*.pt"))
    assert checkpoints, "a final checkpoint was written"
    payload = torch.load(checkpoints[0], weights_only=True)
    assert payload["meta"]["env_id"] == "CartPole-v1"


def test_a_killed_worker_is_restarted_and_the_run_goes_on(tmp_path):
    proc = start_training("a3c.train", *FAST, "--max-seconds", "14", "--run-dir", str(tmp_path / "run"),
                          log=tmp_path / "log")
    assert wait_for(lambda: len(worker_pids(proc.pid)) >= 3, 60)
    time.sleep(2)
    victim = worker_pids(proc.pid)[0]
    os.kill(victim, signal.SIGKILL)
    assert wait_for(lambda: any(p != victim for p in worker_pids(proc.pid))
                    and len(worker_pids(proc.pid)) >= 3, 15), "a replacement starts"
    proc.wait(timeout=60)
    log = (tmp_path / "log").read_text()
    assert proc.returncode == 0, log
    assert f"(pid {victim}) died with exit code -9" in log and "restarting it" in log
    assert "worker restarts 1" in log
    assert wait_for(lambda: not processes_in_group(proc.pid), 5), "no process of the run is left"


def test_resume_continues_counters_and_curves(tmp_path):
    run = tmp_path / "run"
    first = subprocess.run([sys.executable, "-m", "a3c.train", *FAST, "--total-steps", "4000",
                            "--run-dir", str(run)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    steps_first = torch.load(sorted(run.glob("ckpt-*.pt"))[-1], weights_only=True)["counters"]["steps"].sum()
    assert steps_first >= 4000
    second = subprocess.run([sys.executable, "-m", "a3c.train", "--resume", str(run), "--total-steps", "9000"],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert second.returncode == 0, second.stderr
    assert "resumed from" in second.stdout
    payload = torch.load(sorted(run.glob("ckpt-*.pt"))[-1], weights_only=True)
    assert payload["counters"]["steps"].sum() >= 9000
    with open(run / "metrics.csv") as f:
        steps = [int(row["env_steps"]) for row in csv.DictReader(f)]
    assert steps == sorted(steps) and steps[-1] >= 9000, "one continuous curve across the resume"
    assert len(list(run.glob("ckpt-*.pt"))) == 2, "the last two checkpoints are kept"
    assert (run / "learning_curve.png").stat().st_size > 0


@pytest.mark.parametrize("argv, expected", [
    (["--env-id", "NoSuchEnv-v0"], "unknown or unusable env id"),
    (["--num-workers", "0"], "--num-workers must be positive"),
    (["--lr", "-0.001"], "--lr must be positive"),
    (["--max-grad-norm", "-1"], "--max-grad-norm must not be negative"),
    (["--adam-beta2", "1"], "--adam-beta2 must be in [0, 1)"),
    (["--algo", "ppo"], "invalid choice"),
    (["--total-steps", "lots"], "invalid int value"),
    (["--resume", "/nonexistent/run"], "cannot resume"),
])
def test_bad_input_gives_one_clear_line(capsys, argv, expected):
    assert expected in one_error_line(cli, capsys, argv)


def test_corrupt_and_mismatched_checkpoints_are_refused(tmp_path, capsys):
    run = tmp_path / "run"
    assert cli([*FAST, "--total-steps", "500", "--eval-interval-seconds", "0", "--run-dir", str(run)]) == 0
    capsys.readouterr()
    assert "holds a network of other shapes" in one_error_line(cli, capsys, ["--resume", str(run), "--hidden-size", "32"])
    assert "was made for env_id 'CartPole-v1'" in one_error_line(
        cli, capsys, ["--resume", str(run), "--env-id", "Acrobot-v1"])
    assert "was made for algo 'a3c'" in one_error_line(cli, capsys, ["--resume", str(run), "--algo", "a3c-lstm"])
    checkpoint = sorted(run.glob("ckpt-*.pt"))[-1]
    checkpoint.write_bytes(checkpoint.read_bytes()[:100])
    assert "corrupt" in one_error_line(cli, capsys, ["--resume", str(checkpoint)])


def test_the_process_exit_status_and_stderr_of_bad_input():
    result = subprocess.run([sys.executable, "-m", "a3c.train", "--num-workers", "0"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "python -m a3c.train: error: --num-workers must be positive, got 0"]


def test_help_shows_the_field_docstrings():
    result = subprocess.run([sys.executable, "-m", "a3c.train", "--help"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    assert "actor-learner processes" in result.stdout and "--stop-return" in result.stdout


def test_an_owner_killed_during_start_up_leaves_no_child_and_no_semaphore(tmp_path):
    """SIGKILLed while its worker was still importing, the owner left the worker running for good (the
    worker took the reaper for its parent) and so its resource tracker too, with the run's semaphores."""
    before = shm_entries()
    run = tmp_path / "run"
    proc = start_training("a3c.train", "--env-id", "CartPole-v1", "--num-workers", "1", "--eval-interval-seconds",
                          "0", "--run-dir", str(run), log=tmp_path / "log")
    assert wait_for(lambda: any("spawn_main" in cmd for _, cmd in children_of(proc.pid)), 60), "a worker is starting"
    assert any(name.startswith("sem.mp-") for name in shm_entries() - before), "the run holds semaphores"
    proc.kill()
    proc.wait()
    assert wait_for(lambda: not processes_in_group(proc.pid), 15), processes_in_group(proc.pid)
    assert shm_entries() <= before, f"left behind: {sorted(shm_entries() - before)}"
