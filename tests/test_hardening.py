"""Bad input answered in one line by every entry point, and the replay surviving a clean stop."""
from __future__ import annotations

import errno
import os

import numpy as np
import pytest
import torch

import a3c.train
import apex.train
import agent57.train
import ngu.train
import r2d2.train
from apex.config import make_config as apex_config
from common.errors import RunFailure
from common.recipe import EnvProbe
from common.replay.base import ReplayBase
from common.replay.sequence import SequenceReplay, SequenceReplayConfig, SequenceWriter
from tests.helpers import one_error_line

CLIS = {"a3c": a3c.train.cli, "apex": apex.train.cli, "r2d2": r2d2.train.cli, "ngu": ngu.train.cli,
        "agent57": agent57.train.cli}
NO_EVAL = ["--eval-interval-seconds", "0"]


def short_failure(cli, capsys, argv: list[str]) -> str:
    """Runs cli(argv): it must return non-zero (no exception escaping) with at most 3 lines on stderr
    and no traceback; returns stderr."""
    try:
        code = cli(argv)
    except BaseException as err:  # noqa: BLE001 - what a user would see as a traceback
        pytest.fail(f"{type(err).__name__} escaped the cli: {err}")
    err = capsys.readouterr().err
    assert code != 0, err
    assert 1 <= len(err.strip().splitlines()) <= 3 and "Traceback" not in err, err
    return err


def read_only_dir(tmp_path):
    ro = tmp_path / "read-only"
    ro.mkdir()
    ro.chmod(0o555)
    if os.access(ro, os.W_OK):  # root writes anyway
        pytest.skip("running as root: a read-only directory is writable")
    return ro


@pytest.mark.parametrize("family", CLIS)
@pytest.mark.parametrize("case, expected", [
    # Answered by make_env on the env-construction branch (another developer's); fails here until then.
    ("unimportable env module", "nosuchmodule"),
    ("run dir is a file", "cannot write the run directory"),
    ("run dir under a read-only directory", "cannot write the run directory"),
    ("env whose reset raises", "fails in reset: RuntimeError: the simulator is not installed (a second line"),
    ("env whose step raises", "fails in step: ValueError: step needs a connection"),
    ("4-D Box observations", "observes 4-D arrays [2, 16, 16, 3]"),
])
def test_bad_input_is_one_line_in_every_family(family, case, expected, tmp_path, capsys):
    argv = {
        "unimportable env module": ["--env-id", "nosuchmodule:Foo-v0"],
        "run dir is a file": ["--env-id", "CartPole-v1", "--run-dir", str(tmp_path / "a-file")],
        "run dir under a read-only directory": ["--env-id", "CartPole-v1", "--run-dir", "<read-only>/run"],
        "env whose reset raises": ["--env-id", "tests.bad_envs:ResetRaises-v0"],
        "env whose step raises": ["--env-id", "tests.bad_envs:StepRaises-v0"],
        "4-D Box observations": ["--env-id", "tests.bad_envs:Box4D-v0"],
    }[case]
    (tmp_path / "a-file").write_text("not a directory\n")
    if "<read-only>/run" in argv:
        argv[argv.index("<read-only>/run")] = str(read_only_dir(tmp_path) / "run")
    elif "--run-dir" not in argv:
        argv += ["--run-dir", str(tmp_path / "run")]
    assert expected in short_failure(CLIS[family], capsys, argv + NO_EVAL + ["--total-steps", "64"])


def test_a_full_disk_and_a_lying_env_are_one_line(tmp_path, capsys, monkeypatch):
    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("common.recipe.write_config", no_space)
    line = one_error_line(apex.train.cli, capsys, ["--run-dir", str(tmp_path / "run"), *NO_EVAL])
    assert line.endswith("cannot write the run directory " + str(tmp_path / "run") + ": No space left on device")
    monkeypatch.undo()

    def read_only(self, *args, **kwargs):  # what mkdir meets under a read-only directory, even as root
        raise PermissionError(errno.EACCES, "Permission denied", str(self))

    monkeypatch.setattr("pathlib.Path.mkdir", read_only)
    argv = ["--env-id", "CartPole-v1", "--run-dir", str(tmp_path / "ro"), *NO_EVAL]
    line = one_error_line(r2d2.train.cli, capsys, argv)
    assert line.endswith(f"cannot write the run directory {tmp_path / 'ro'}: Permission denied")
    monkeypatch.undo()
    line = one_error_line(a3c.train.cli, capsys, ["--env-id", "tests.bad_envs:WrongShape-v0", *NO_EVAL])
    assert "'tests.bad_envs:WrongShape-v0'" in line and "[5]" in line


def test_a_disk_that_fills_up_during_the_run_is_one_line(tmp_path, capsys, monkeypatch):
    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "run" / "ckpt.tmp"))

    monkeypatch.setattr("common.recipe.save_checkpoint", no_space)
    code = apex.train.cli(["--serial", "--total-steps", "64", *NO_EVAL, "--run-dir", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 1 and err.strip().splitlines() == [
        f"python -m apex.train: error: [Errno 28] No space left on device: '{tmp_path / 'run' / 'ckpt.tmp'}'"]


def test_a_part_of_the_run_that_stops_answering_ends_it_in_one_line(tmp_path, capsys, monkeypatch):
    """RunFailure, what a hung Ray shard raises in the learner's prefetch thread, stops a parallel run:
    its actor stopped, a final checkpoint written, one line on stderr, exit status 1."""
    def no_answer(self):
        raise RunFailure("no answer from the replay shards for a batch in 60 s: stopping the run")

    monkeypatch.setattr("apex.learner.Learner.sample", no_answer)
    run = tmp_path / "run"
    code = apex.train.cli(["--num-workers", "1", "--learning-starts", "200", "--max-seconds", "60",
                           *NO_EVAL, "--run-dir", str(run)])
    err = capsys.readouterr().err
    assert code == 1 and err.strip().splitlines() == [
        "python -m apex.train: error: no answer from the replay shards for a batch in 60 s: stopping the run"]
    assert list(run.glob("ckpt-*.pt"))


def test_a_checkpoint_of_an_older_network_layout_names_the_difference(tmp_path, capsys):
    run = tmp_path / "run"
    assert apex.train.cli(["--serial", "--total-steps", "64", *NO_EVAL, "--save-replay", "false",
                           "--run-dir", str(run)]) == 0
    capsys.readouterr()
    checkpoint = sorted(run.glob("ckpt-*.pt"))[-1]
    payload = torch.load(checkpoint, weights_only=True)
    # An older layout of the same network: the torso's first layer under another name.
    for table in (payload["model"], payload["target"]):
        table["torso.layers.0.weight"] = table.pop("torso.net.0.weight")
    payload["meta"]["network"] = [[("torso.layers.0.weight" if name == "torso.net.0.weight" else name), shape]
                                  for name, shape in payload["meta"]["network"]]
    torch.save(payload, checkpoint)
    line = one_error_line(apex.train.cli, capsys, ["--resume", str(checkpoint)])
    assert "missing torso.net.0.weight; unexpected torso.layers.0.weight" in line
    # Without the meta entry (older still), the state dict itself is checked; still one line.
    payload["meta"].pop("network")
    torch.save(payload, checkpoint)
    assert "no network signature" in one_error_line(apex.train.cli, capsys, ["--resume", str(checkpoint)])


# ---- the replay across a clean stop --------------------------------------------------------------

def replay_snapshots(monkeypatch) -> list[dict[str, np.ndarray]]:
    """Every replay closed from now on leaves a copy of its arrays (all of them: items, priority trees,
    keys, cursors) in the returned list."""
    snapshots: list[dict[str, np.ndarray]] = []
    close = ReplayBase.close

    def snapshot_then_close(self):
        snapshots.append({name: a.copy() for name, a in self.storage.arrays.arrays.items() if name != "lock_holder"})
        close(self)

    monkeypatch.setattr(ReplayBase, "close", snapshot_then_close)
    return snapshots


def final_updates(run_dir) -> int:
    return int(torch.load(sorted(run_dir.glob("ckpt-*.pt"))[-1], weights_only=True)["updates"])


def test_apex_replay_survives_a_clean_stop_and_learning_goes_on_at_once(tmp_path, capsys, monkeypatch):
    snapshots = replay_snapshots(monkeypatch)
    run = tmp_path / "run"
    cfg = apex_config({"serial": True, "total_steps": 1200, "learning_starts": 300, "eval_interval_seconds": 0.0,
                       "run_dir": str(run)})
    summary = apex.train.main(cfg)  # stops at the end of its budget: a clean stop
    out = capsys.readouterr().out
    assert "saved the replay" in out and [p.name for p in run.glob("replay-*")] == ["replay-000000001200.bin"]
    before, updates_before = snapshots[-1], final_updates(run)
    assert updates_before > 0 and summary.env_steps == 1200
    assert before["counters"][0] >= cfg.learning_starts  # items inserted: far more than one round adds

    # Resumed with nothing left to do: the replay comes back exactly (items, priorities, keys, cursors).
    assert apex.train.cli(["--resume", str(run), "--total-steps", "1200"]) == 0
    out = capsys.readouterr().out
    assert "items restored from replay-000000001200.bin" in out
    for name, value in before.items():
        assert np.array_equal(snapshots[-1][name], value), name

    # One round of actor steps (2 actors x 4 envs) after the resume: the learner updates at once, since
    # the restored replay holds learning_starts items; without it the replay would have to refill first.
    one_round = ["--resume", str(run / "ckpt-000000001200.pt"), "--total-steps", "1208"]
    assert apex.train.cli([*one_round, "--run-dir", str(tmp_path / "with")]) == 0
    assert final_updates(tmp_path / "with") > updates_before
    assert apex.train.cli([*one_round, "--run-dir", str(tmp_path / "without"), "--resume-replay", "false"]) == 0
    assert final_updates(tmp_path / "without") == updates_before
    assert "refills before learning goes on (--resume-replay false)" in capsys.readouterr().out

    # A truncated saved replay is refused in one line; --resume-replay false resumes without it.
    saved = run / "replay-000000001200.bin"
    saved.write_bytes(saved.read_bytes()[: saved.stat().st_size // 2])
    line = one_error_line(apex.train.cli, capsys, [*one_round, "--run-dir", str(tmp_path / "cut")])
    assert "cannot restore the replay" in line and "truncated" in line and "--resume-replay false" in line
    assert apex.train.cli([*one_round, "--run-dir", str(tmp_path / "cut"), "--resume-replay", "false"]) == 0
    # --save-replay false: no file, and the one left by an earlier stop is not kept past its checkpoint.
    assert apex.train.cli(["--resume", str(run), "--total-steps", "1216", "--save-replay", "false",
                           "--resume-replay", "false"]) == 0
    assert not list(run.glob("replay-*"))


def fill_sequences(replay: SequenceReplay, episodes: int) -> None:
    writer = SequenceWriter(replay, block_size=2, priority_fn=lambda seq: 1.0 + float(seq["reward"].sum()))
    for episode in range(episodes):
        for t in range(5 + episode):
            frame = np.full((2, 84, 84), episode * 16 + t, np.uint8)
            state = np.full(8, episode + t / 10, np.float32)
            writer.add_step(frame, t % 3, float(t), 0.99, state, -state)
        writer.end_episode()
    writer.flush()


def test_sequence_replay_with_a_frame_ring_survives_save_and_load(tmp_path):
    config = SequenceReplayConfig(6, obs_shape=(2, 84, 84), state_size=8, length=4, overlap=2, frame_stack=2)
    replay = SequenceReplay.create(config)
    fill_sequences(replay, 5)  # wraps: more sequences than slots
    replay.update_priorities(*(lambda b: (b.key, np.arange(1.0, 5.0)))(replay.sample(4, 0.5, np.random.default_rng(1))))
    path = tmp_path / "replay.bin"
    replay.save(path, say=lambda line: None)
    restored = SequenceReplay.create(config)
    restored.load(path, say=lambda line: None)
    for name, value in replay.storage.arrays.arrays.items():
        if name != "lock_holder":
            assert np.array_equal(restored.storage.arrays[name], value), name
    for a, b in zip(replay.sample(8, 0.5, np.random.default_rng(3)), restored.sample(8, 0.5, np.random.default_rng(3))):
        assert np.array_equal(a, b)
    fill_sequences(restored, 1)  # the cursors came back too: the next writes go where the saved replay's would
    fill_sequences(replay, 1)
    assert np.array_equal(restored.storage.arrays["key"], replay.storage.arrays["key"])

    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0xFF  # one flipped byte among the frames
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="corrupt"):
        restored.load(path)
    assert len(restored) == 0  # a checksum found late leaves the replay empty, never half-loaded
    fill_sequences(restored, 2)
    assert len(restored) > 0 and restored.sample(2, 0.5, np.random.default_rng(0)).obs.shape == (2, 4, 2, 84, 84)
    for r in (replay, restored):
        r.close()


def test_r2d2_sequence_replay_survives_a_clean_stop(tmp_path, capsys, monkeypatch):
    snapshots = replay_snapshots(monkeypatch)
    small = {"env_id": "CartPole-v1", "serial": True, "num_workers": 1, "envs_per_actor": 2, "learning_starts": 40,
             "batch_size": 8, "lstm_size": 16, "hidden_size": 16, "sequence_length": 8, "sequence_overlap": 4,
             "burn_in": 4, "samples_per_insert": 0.0, "eval_interval_seconds": 0.0}
    run = tmp_path / "run"
    r2d2.train.main(r2d2.train.make_config({**small, "total_steps": 400, "run_dir": str(run)}))
    before, updates_before = snapshots[-1], final_updates(run)
    assert updates_before > 0 and (run / "replay-000000000400.bin").is_file()
    # One round (2 envs, one step each): the restored 40+ sequences let the learner update at once.
    r2d2.train.main(r2d2.train.make_config({"resume": str(run), "total_steps": 402}))
    assert "items restored from replay-000000000400.bin" in capsys.readouterr().out
    assert final_updates(run) > updates_before
    restored = snapshots[-1]
    assert np.array_equal(restored["obs"][before["key"] >= 0], before["obs"][before["key"] >= 0])
    assert restored["counters"][0] >= before["counters"][0]


def test_parallel_learner_updates_at_once_on_a_restored_replay(tmp_path):
    """Parallel mode's rate limit starts counting at the restored replay: no refill, no wait for actors."""
    from apex.learner import Learner
    from common.counters import RunCounters
    from common.distributed.learner_loop import ParallelLearnerWork, RateLimit
    from common.distributed.params import PublishedParams
    from common.replay.transition import TransitionReplay, TransitionWriter

    cfg = apex_config({"learning_starts": 300, "eval_interval_seconds": 0.0})
    saved = TransitionReplay.create(apex.train.replay_config(cfg, EnvProbe((4,), 2, "float32", None)))
    writer = TransitionWriter(saved, block_size=16)
    previous = writer.add_frame(np.zeros(4, np.float32), True)
    for t in range(1, 400):
        step = writer.add_frame(np.full(4, t, np.float32), False)
        writer.add(previous, t % 2, 1.0, 0.99, step)
        previous = step
    writer.flush()
    saved.save(tmp_path / "replay.bin", say=lambda line: None)
    replay = TransitionReplay.create(saved.config)
    replay.load(tmp_path / "replay.bin", say=lambda line: None)
    learner = Learner(cfg, (4,), 2, torch.device("cpu"), replay, RunCounters(1))
    learner.updates = 500  # as a checkpoint restores it
    limit = torch.full((1,), -1, dtype=torch.int64)
    work = ParallelLearnerWork(learner, PublishedParams(learner.net),
                               RateLimit(cfg.samples_per_insert, cfg.batch_size, limit))
    try:
        for _ in range(100):
            work()
            if learner.updates > 500:
                break
        assert learner.updates > 500 and replay.inserted() == saved.inserted() == 399
        assert limit[0] > replay.inserted(), "the actors may insert right away too"
    finally:
        work.close()
        saved.close()
        replay.close()


def test_a_stop_signal_waits_for_the_loops_check_and_leaves_no_lock_held():
    """A SIGTERM raised as KeyboardInterrupt wherever the main thread was could land just after a replay
    lock's acquire, before the `with` could release it (in about half of these trials when it did), and
    the final replay save then waited on the lock for good. Deferred to the loop's check, none is left held."""
    import signal
    import threading

    from common.replay.locks import RecoverableLock
    from common.supervisor import CTX, DeferredInterrupt

    for trial in range(60):
        lock = RecoverableLock(CTX.Lock(), CTX.Lock(), np.zeros(1, np.int64))
        timer = threading.Timer(0.001 * (1 + trial % 10), os.kill, (os.getpid(), signal.SIGTERM))
        with DeferredInterrupt() as interrupt, pytest.raises(KeyboardInterrupt):
            timer.start()
            while True:
                interrupt.check()
                with lock:
                    pass
        timer.join()
        assert lock.lock.acquire(timeout=0.1), f"trial {trial}: the lock was left held"
        lock.lock.release()


def test_a_deferred_interrupt_raises_at_the_check_or_at_a_second_signal_and_restores_the_handlers():
    import signal
    import time

    from common.supervisor import DeferredInterrupt

    before = signal.getsignal(signal.SIGTERM)
    with DeferredInterrupt() as interrupt:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.01)  # the handler has run: nothing raised yet
        assert interrupt.requested
        with pytest.raises(KeyboardInterrupt):
            interrupt.check()
        with pytest.raises(KeyboardInterrupt):  # a second signal: at once
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(1.0)
    assert signal.getsignal(signal.SIGTERM) is before

    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # a background job's: Ctrl-C is not for it
    try:
        with DeferredInterrupt() as interrupt:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.01)
            assert not interrupt.requested
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)


@pytest.mark.parametrize("when", ["the loop's last pass", "the final save"])
def test_a_signal_at_the_end_of_a_run_neither_cuts_the_final_save_nor_goes_unreported(when, tmp_path, capsys):
    """A SIGTERM in the owner loop's last pass (after its last check) or while the final checkpoint is
    written: the save completes, and the run reports "interrupted" (exit status 130), not a normal stop."""
    import signal
    import time
    from types import SimpleNamespace

    from common.counters import RunCounters
    from common.logger import RunLogger
    from common.owner import own_run
    from common.run import RunSummary
    from common.supervisor import Supervisor

    def signal_now():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.05)  # the handler runs at once; raising here is what must not happen

    saves = []

    def checkpoint(wall_seconds, final=False):
        if final and when == "the final save":
            signal_now()
        saves.append(final)
        return tmp_path / "ckpt.pt"

    cfg = SimpleNamespace(total_steps=1, max_seconds=0.0, stop_return=None, log_interval_seconds=60.0,
                          checkpoint_interval_seconds=60.0, frames_per_step=1)
    counters = RunCounters(1)
    counters.steps[0] = 1  # the loop stops at the end of its first pass: --total-steps reached
    work = signal_now if when == "the loop's last pass" else (lambda: None)

    def outside(signum, frame):  # the handler from before the run: a signal that reaches it was not deferred
        raise RuntimeError("the signal was not deferred")

    before = signal.signal(signal.SIGTERM, outside)
    try:
        logger = RunLogger(tmp_path, False, "t", tensorboard=False)
        summary = own_run(cfg, counters, Supervisor(log=lambda _: None), logger, RunSummary(tmp_path), 0.0,
                          checkpoint, work)
        assert signal.getsignal(signal.SIGTERM) is outside
    finally:
        signal.signal(signal.SIGTERM, before)
    assert saves == [True]
    assert summary.stop_reason == "interrupted"
    assert "interrupted" in capsys.readouterr().err


def test_sigterm_saves_the_replay_and_a_parallel_resume_learns_at_once(tmp_path):
    import signal
    import subprocess
    import sys

    from tests.helpers import ROOT, start_training, wait_for

    run = tmp_path / "run"

    def logged_updates() -> int:
        metrics = run / "metrics.csv"
        rows = metrics.read_text().splitlines()[1:] if metrics.is_file() else []
        return int(rows[-1].split(",")[3]) if rows else 0

    proc = start_training("apex.train", "--env-id", "CartPole-v1", "--num-workers", "2", *NO_EVAL,
                          "--log-interval-seconds", "0.5", "--run-dir", str(run), log=tmp_path / "log")
    assert wait_for(lambda: logged_updates() > 0, 90), "the learner is updating"
    proc.send_signal(signal.SIGTERM)  # the owner only, as a service manager stops it
    proc.wait(timeout=30)
    log = (tmp_path / "log").read_text()
    assert proc.returncode == 130 and "saved the replay" in log and "Traceback" not in log, log
    checkpoint = sorted(run.glob("ckpt-*.pt"))[-1]
    before = torch.load(checkpoint, weights_only=True)
    assert (run / checkpoint.name.replace("ckpt-", "replay-").replace(".pt", ".bin")).is_file()

    # 200 more steps: fewer than --learning-starts (1,000), so any update comes from the restored replay.
    steps = int(before["counters"]["steps"].sum())
    resumed = subprocess.run([sys.executable, "-m", "apex.train", "--resume", str(run), "--total-steps",
                              str(steps + 200)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert "items restored from" in resumed.stdout
    assert torch.load(sorted(run.glob("ckpt-*.pt"))[-1], weights_only=True)["updates"] > before["updates"]


def test_a_long_save_or_restore_says_how_far_it_is(tmp_path, monkeypatch):
    from common.replay import persist
    from common.replay.transition import TransitionReplay, TransitionReplayConfig

    monkeypatch.setattr(persist, "PROGRESS_AFTER_SECONDS", 0.0)  # as if every chunk came after a few seconds
    monkeypatch.setattr(persist, "CHUNK_BYTES", 1 << 16)
    config = TransitionReplayConfig(64, frame_shape=(84, 84), frame_stack=4)
    replay, restored = TransitionReplay.create(config), TransitionReplay.create(config)
    lines: list[str] = []
    try:
        replay.save(tmp_path / "replay.bin", say=lines.append)
        assert lines and lines[0].startswith(f"saving the replay to {tmp_path / 'replay.bin'}: ")
        assert lines[-1].endswith("100% of 0.01 GiB")
        lines.clear()
        restored.load(tmp_path / "replay.bin", say=lines.append)
        assert lines and lines[-1].startswith("restoring the replay from") and lines[-1].endswith("100% of 0.01 GiB")
    finally:
        replay.close()
        restored.close()
