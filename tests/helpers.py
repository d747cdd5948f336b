"""Process and shared-memory inspection for the tests."""
from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent


def shm_entries() -> set[str]:
    return set(os.listdir("/dev/shm"))


def _live_processes():
    """(pid, parent pid, process group, command line) of every live process."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if fields[0] != "Z":
            yield int(entry), int(fields[1]), int(fields[2]), cmdline


def processes_in_group(pgid: int) -> list[int]:
    return [pid for pid, _, group, _ in _live_processes() if group == pgid]


def children_of(pid: int) -> list[tuple[int, str]]:
    """(pid, command line) of the live children of pid."""
    return [(child, cmd) for child, parent, _, cmd in _live_processes() if parent == pid]


STARTED: list[subprocess.Popen] = []  # what start_training started; conftest.py kills what a test leaves


def _sigint_as_in_a_terminal() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_training(module: str, *args: str, log: Path) -> subprocess.Popen:
    """Starts `python -m module args` in a session of its own, its output going to log, with SIGINT's
    default disposition, as a command typed at a terminal has it: a shell starts background jobs with
    SIGINT ignored, and the tests' own Ctrl-C would then reach nothing when the suite runs as one."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", module, *args], cwd=ROOT, env=env,
                            stdout=open(log, "w"), stderr=subprocess.STDOUT, start_new_session=True,
                            preexec_fn=_sigint_as_in_a_terminal)
    STARTED.append(proc)
    return proc


def kill_leftovers(grace_seconds: float = 10.0) -> None:
    """SIGKILLs every started run still alive, so that a failed test cannot leave a training run behind
    to slow the tests after it. The owner goes first: its children leave once they see it gone, and
    its resource tracker, last to go, then unlinks the run's semaphores; SIGKILLing the whole session
    at once took the tracker with it and left them in /dev/shm. What is left of the session after
    `grace_seconds` is SIGKILLed."""
    while STARTED:
        proc = STARTED.pop()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
            wait_for(lambda: not processes_in_group(proc.pid), grace_seconds)
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def wait_for(predicate, timeout: float, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


def one_error_line(cli, capsys, argv: list[str]) -> str:
    """Runs a train module's cli(argv), checks exit status 2 and exactly one line on stderr; returns it."""
    code = cli(argv)
    err = capsys.readouterr().err
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def interrupt_like_a_terminal(proc: subprocess.Popen, log: Path) -> str:
    """Ctrl-C to the run's whole process group, as a terminal sends it; checks the run exits with 130
    within 10 s, says "interrupted" with no traceback and leaves no process. Returns its log."""
    os.killpg(proc.pid, signal.SIGINT)
    started = time.monotonic()
    proc.wait(timeout=15)
    assert time.monotonic() - started < 10, "Ctrl-C exits within 10 s"
    text = log.read_text()
    assert proc.returncode == 130, text
    assert "interrupted" in text and "Traceback" not in text
    assert wait_for(lambda: not processes_in_group(proc.pid), 5), "no process of the run is left"
    return text


def left_behind(shm_before: set[str]) -> set[str]:
    """New /dev/shm entries that no other live process maps (runs of other people on the box make their
    own semaphores while a test runs; those are not ours to count)."""
    new = shm_entries() - shm_before
    for maps in Path("/proc").glob("[0-9]*/maps"):
        if maps.parent.name == str(os.getpid()) or not new:
            continue
        try:
            text = maps.read_text()
        except OSError:
            continue
        new = {name for name in new if name not in text}
    return new


def finite_model(checkpoint) -> dict:
    payload = torch.load(checkpoint, weights_only=True)
    assert all(torch.isfinite(t).all() for t in payload["model"].values())
    return payload


def logged_updates(run: Path) -> list[int]:
    """The updates column of a run's metrics.csv."""
    metrics = run / "metrics.csv"
    return [int(row["updates"]) for row in csv.DictReader(open(metrics))] if metrics.is_file() else []


def killed_actor_then_ctrl_c(module: str, env_id: str, tmp_path: Path) -> dict:
    """Runs `python -m module` with 2 actor processes: once the learner updates, SIGKILLs an actor and
    checks a replacement starts and the learner goes on; then Ctrl-C, which must exit with 130 within
    10 s, say which actor died, print no traceback and leave no process and no /dev/shm segment.
    Returns the final checkpoint (its model checked finite)."""
    shm_before = shm_entries()
    run = tmp_path / "run"
    proc = start_training(module, "--env-id", env_id, "--num-workers", "2", "--learning-starts", "16",
                          "--eval-interval-seconds", "0", "--log-interval-seconds", "0.5", "--run-dir", str(run),
                          log=tmp_path / "log")
    spawned = lambda: [pid for pid, cmd in children_of(proc.pid) if "spawn_main" in cmd]  # noqa: E731
    assert wait_for(lambda: len(spawned()) >= 2, 60), "actors start"
    assert wait_for(lambda: logged_updates(run)[-1:] > [0], 60), "the learner is updating"
    victim = sorted(spawned())[0]
    os.kill(victim, signal.SIGKILL)
    assert wait_for(lambda: victim not in spawned() and len(spawned()) >= 2, 15), "a replacement starts"
    updates_after_kill = logged_updates(run)[-1]
    assert wait_for(lambda: logged_updates(run)[-1] > updates_after_kill, 30), "the learner goes on"
    os.killpg(proc.pid, signal.SIGINT)
    started = time.monotonic()
    proc.wait(timeout=15)
    assert time.monotonic() - started < 10
    log = (tmp_path / "log").read_text()
    assert proc.returncode == 130, log
    assert f"(pid {victim}) died with exit code -9" in log and "Traceback" not in log
    assert wait_for(lambda: not processes_in_group(proc.pid), 5), "no process of the run is left"
    assert not left_behind(shm_before), "no /dev/shm segment is left"
    return finite_model(sorted(run.glob("ckpt-*.pt"))[-1])
