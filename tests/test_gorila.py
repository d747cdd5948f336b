"""Gorila's bundled mode (`python -m apex.train --gorila`): the staleness rule, the parameter server on a
hand-made sequence of versions, a bundle's gradient against the DQN loss's, learning, and the command
line (Ctrl-C, a killed bundle, resume, bad input).

Learning: 2 bundles reach CartPole-v1's 475 within the budget (an untrained greedy network scores about
10). Checked once by breaking the code by hand: with the server stepping along the gradient instead of
against it (`ParameterServer.step` on the negated gradient), seed 0 and a 100 s budget, the best
evaluation was 33.9. Which gradients the server applies and which it drops is pinned exactly by the
hand-made sequence of versions below.
"""
import gc
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from apex.config import make_config
from benchmarks.gorila import applied_per_second, server_counts, server_staleness
from apex.learner import BundleLearner
from apex.network import make_network
from apex.train import cli, main
from common.counters import RunCounters
from common.distributed.actor_loop import ParamRefresh
from common.distributed.bundle import BundlePace, LossOutliers, bundle_until_stopped
from common.distributed.gradients import GradientSlots, is_fresh
from common.distributed.param_server import ParameterServer, ParameterServerWork
from common.distributed.params import PublishedParams
from common.replay.transition import TransitionReplay, TransitionReplayConfig, TransitionWriter
from tests.helpers import (ROOT, children_of, logged_updates, one_error_line, processes_in_group, shm_entries,
                           start_training, wait_for)

FAST = ["--gorila", "--env-id", "CartPole-v1", "--num-workers", "2", "--eval-interval-seconds", "1",
        "--log-interval-seconds", "0.5"]


def test_staleness_rule_by_hand():
    # server at update 10, bound 3: gradients made at updates 7..10 are applied, 6 and older dropped
    assert [is_fresh(made, 10, 3) for made in (10, 9, 8, 7, 6, 0)] == [True, True, True, True, False, False]
    assert is_fresh(5, 5, 0) and not is_fresh(4, 5, 0)  # bound 0: only the current parameters
    assert not is_fresh(11, 10, 3), "a version from the future (another run's) is never applied"


class DictGradients:
    """A second GradientChannel: gradient copies in a dict, in one process (the seam's contract is what
    the server's test below states of both)."""

    def __init__(self, num_slots: int, num_params: int):
        self.waiting: dict[int, tuple[list[torch.Tensor], int]] = {}
        self.discarded = 0

    def discard(self, slot: int) -> None:
        self.discarded += 1

    def num_discarded(self) -> int:
        return self.discarded

    def is_empty(self, slot: int) -> bool:
        return slot not in self.waiting

    def put(self, slot: int, net: nn.Module, version: int) -> None:
        if slot in self.waiting:
            raise RuntimeError(f"gradient slot {slot} is still full")
        self.waiting[slot] = ([p.grad.clone() for p in net.parameters()], version)

    def full_slots(self) -> list[int]:
        return sorted(self.waiting)

    def take(self, slot: int, into: nn.Module) -> int:
        grads, version = self.waiting[slot]
        for p, grad in zip(into.parameters(), grads):
            p.grad = grad.clone()
        return version

    def release(self, slot: int) -> None:
        del self.waiting[slot]


def _server(channel: type, max_staleness: int, target_update_interval: int):
    """A one-weight network y = w x (w = 0) under plain SGD with lr 1: each applied gradient g moves w by -g."""
    net = nn.Linear(1, 1, bias=False)
    nn.init.zeros_(net.weight)
    counters = RunCounters(2)
    server = ParameterServer(net, torch.optim.SGD(net.parameters(), lr=1.0), counters, max_grad_norm=1e9,
                             target_update_interval=target_update_interval, max_staleness=max_staleness)
    params, target_params = PublishedParams(server.net), PublishedParams(server.target)
    slots = channel(2, 1)
    return server, ParameterServerWork(server, slots, params, target_params), slots, params, target_params


def _send(slots: GradientSlots, slot: int, gradient: float, version: int) -> None:
    bundle_net = nn.Linear(1, 1, bias=False)
    bundle_net.weight.grad = torch.tensor([[gradient]])
    slots.put(slot, bundle_net, version)


@pytest.mark.parametrize("channel", [GradientSlots, DictGradients], ids=["shared-slots", "in-process"])
def test_server_applies_a_stale_gradient_only_within_the_bound(channel):
    server, work, slots, params, target_params = _server(channel, max_staleness=2, target_update_interval=3)
    # publications: version 0 is the initial parameters (0 updates); every applied gradient publishes
    # once more, versions 2, 4, 6, ... (PublishedParams counts 2 per publication)
    sequence = [  # (slot, gradient, version it was computed on, applied?, server updates after)
        (0, 1.0, 0, True, 1),      # 0 updates behind
        (1, 2.0, 0, True, 2),      # 1 behind
        (0, 4.0, 0, True, 3),      # 2 behind: the bound; the 3rd update also copies the target
        (1, 8.0, 0, False, 3),     # 3 behind: dropped
        (0, 16.0, 2, True, 4),     # made at 1 update, server at 3: 2 behind
        (1, 32.0, 2, False, 4),    # made at 1, server at 4: 3 behind
        (0, 64.0, -1, False, 4),   # a bundle whose copy may be torn
        (1, 128.0, 8, True, 5),    # made at 4 (the 4th publication): current
    ]
    for slot, gradient, version, applied, updates in sequence:
        _send(slots, slot, gradient, version)
        assert work.serve_ready() == 1
        assert (server.updates, slots.is_empty(slot)) == (updates, True)
    assert server.dropped == 3 and server.counters.updates[0] == 5
    assert (server.staleness_total, server.staleness_max) == (0 + 1 + 2 + 2 + 0, 2), "of the applied ones"
    resumed = _server(channel, max_staleness=2, target_update_interval=3)[0]
    resumed.load_state_dict(server.state_dict())
    assert (resumed.dropped, resumed.staleness_total, resumed.staleness_max) == (3, 5, 2)
    assert server.net.weight.item() == -(1 + 2 + 4 + 16 + 128)
    assert int(params.version) == 2 * 5, "one publication per applied gradient"
    # the target was copied (and published) once, after the 3rd update: w = -(1 + 2 + 4)
    assert server.target.weight.item() == -7.0 and int(target_params.version) == 2


@pytest.mark.parametrize("channel", [GradientSlots, DictGradients], ids=["shared-slots", "in-process"])
def test_a_gradient_waits_in_its_slot_until_the_server_takes_it(channel):
    slots = channel(1, 1)
    _send(slots, 0, 1.0, 0)
    with pytest.raises(RuntimeError, match="still full"):
        _send(slots, 0, 2.0, 0)


def test_bundle_pace_keeps_samples_per_insert():
    pace = BundlePace(samples_per_insert=4.0, batch_size=8)
    assert not pace.learn_next(100)  # learning starts at 100 inserted: nothing owed yet
    assert not pace.learn_next(101)  # 4 sampled per inserted: one batch of 8 per 2 inserts
    assert pace.learn_next(102)
    pace.gradients = 1
    assert not pace.learn_next(103) and pace.learn_next(104)
    serial_like = BundlePace(samples_per_insert=0.0, batch_size=8)
    serial_like.actor_steps = 5
    assert not serial_like.learn_next(0)  # 0: one gradient per actor step once learning starts
    serial_like.actor_steps = 6
    assert serial_like.learn_next(0)


def test_loss_outliers_by_hand():
    rule = LossOutliers(num_stds=1.0, decay=0.5, warmup=2)
    assert rule.keep(1.0) and rule.keep(3.0)  # the warm-up; then mean 2, var 0.5 * (0 + 0.5 * 2^2) = 1
    assert (rule.mean, rule.var) == (2.0, 1.0)
    assert not rule.keep(3.5)  # above 2 + 1 * 1; counted: mean 2.75, var 0.5 * (1 + 0.5 * 1.5^2) = 1.0625
    assert (rule.mean, rule.var) == (2.75, 1.0625)
    assert rule.keep(3.5)  # below 2.75 + sqrt(1.0625) = 3.78
    assert all(LossOutliers(num_stds=0.0).keep(loss) for loss in (1.0, 1e9)), "0: every gradient is sent"


def test_discarded_gradients_are_counted_and_reported():
    server, work, slots, *_ = _server(GradientSlots, max_staleness=2, target_update_interval=3)
    slots.discard(1)
    slots.discard(1)
    assert slots.num_discarded() == 2 and slots.full_slots() == []
    assert work.report() == ("parameter server: 0 gradients applied, 0 dropped as more than 2 updates stale (0.0%); "
                             "the applied ones were 0.00 updates stale on average, at most 0; "
                             "2 discarded by the bundles as loss outliers")


class OneWeightBundle:
    """The actor and learner of a bundle on the one-weight network of `_server`: each gradient is 1 and
    records the weight of the copy it was computed on."""

    def __init__(self, params: PublishedParams):
        self.net = nn.Linear(1, 1, bias=False)
        self.refresh = ParamRefresh(params, self.net, every_steps=1_000_000)  # never by steps: only before a gradient
        self.weights_seen: list[float] = []
        self.closed = False

    def step(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def ready(self) -> bool:
        return True

    def gradient(self) -> float:
        self.weights_seen.append(self.net.weight.item())
        self.net.weight.grad = torch.ones_like(self.net.weight)
        return 1.0


class NoInserts:
    def inserted(self) -> int:
        return 0


def test_a_bundle_computes_each_gradient_on_the_servers_latest_parameters():
    # Nair et al. 2015, Algorithm 1: "Update theta from parameters theta+ of the parameter server" right
    # before each gradient. The server (SGD, lr 1) serves between two turns of the bundle's loop, as it
    # would in its own process; the bundle learns once per actor step (samples per insert 0).
    server, work, slots, params, _ = _server(GradientSlots, max_staleness=64, target_update_interval=100)
    bundle = OneWeightBundle(params)

    def serve_then_check() -> bool:
        work.serve_ready()
        return server.updates >= 3

    bundle_until_stopped(0, bundle, bundle, NoInserts(), slots, bundle.refresh.now, BundlePace(0.0, 1),
                         LossOutliers(0.0), serve_then_check)
    # each gradient of 1 moves w by -1: the 2nd and 3rd gradients were computed on w = -1 and w = -2,
    # the server's parameters after 1 and 2 updates; a copy refreshed by env steps alone would stay at 0
    assert bundle.weights_seen == [0.0, -1.0, -2.0] and server.net.weight.item() == -3.0
    assert (server.staleness_total, server.staleness_max, server.dropped) == (0, 0, 0)
    assert bundle.closed


def _filled_replay(seed: int = 0) -> TransitionReplay:
    """A uniform replay of 40 CartPole-shaped transitions (one-step, a terminal every 10th)."""
    rng = np.random.default_rng(seed)
    replay = TransitionReplay.create(TransitionReplayConfig(capacity=64, frame_shape=(4,), frame_dtype="float32",
                                                            alpha=0.0))
    writer = TransitionWriter(replay, block_size=8)
    step = writer.add_frame(rng.normal(size=4).astype(np.float32), True)
    for t in range(40):
        terminal = t % 10 == 9
        next_step = writer.add_frame(rng.normal(size=4).astype(np.float32), False)
        writer.add(step, int(rng.integers(2)), float(rng.normal()), 0.0 if terminal else 0.99, next_step)
        step = writer.add_frame(rng.normal(size=4).astype(np.float32), True) if terminal else next_step
    writer.flush()
    return replay


def test_a_bundles_gradient_is_the_dqn_loss_gradient_on_its_batch():
    cfg = make_config({"gorila": True, "double": False, "dueling": False, "hidden_size": 16, "batch_size": 8,
                       "seed": 3})
    replay = _filled_replay()
    try:
        torch.manual_seed(0)
        net, target_net = make_network(cfg, (4,), 2), make_network(cfg, (4,), 2)  # a target unlike the net
        learner = BundleLearner(0, cfg, replay, net, PublishedParams(target_net))
        same_rng = np.random.default_rng(cfg.seed + 1000 + 7)  # the learner's own stream, drawn again
        batch = replay.sample(cfg.batch_size, 0.0, same_rng)
        loss = learner.gradient()
        # DQN (Mnih et al. 2015) by hand: y = r + discount * max_a Q_target(o', a); Huber(y - Q(o, a)), mean
        obs, next_obs = torch.from_numpy(batch.obs), torch.from_numpy(batch.next_obs)
        y = torch.from_numpy(batch.reward) + torch.from_numpy(batch.discount) * target_net(next_obs).max(-1).values
        td = y.detach() - net(obs)[torch.arange(cfg.batch_size), torch.from_numpy(batch.action)]
        expected_loss = torch.where(td.abs() <= 1, 0.5 * td ** 2, td.abs() - 0.5).mean()
        expected = torch.autograd.grad(expected_loss, list(net.parameters()))
        assert loss == pytest.approx(expected_loss.item(), rel=1e-6)
        for got, want in zip([p.grad for p in net.parameters()], expected):
            torch.testing.assert_close(got, want)
        # and the server receives exactly that gradient
        slots, server_net = GradientSlots(1, sum(p.numel() for p in net.parameters())), make_network(cfg, (4,), 2)
        slots.put(0, net, 6)
        assert slots.take(0, server_net) == 6
        for got, want in zip([p.grad for p in server_net.parameters()], expected):
            torch.testing.assert_close(got, want)
    finally:
        replay.close()


def test_learns_cartpole(tmp_path):
    cfg = make_config({"gorila": True, "env_id": "CartPole-v1", "num_workers": 2, "seed": 0, "stop_return": 475.0,
                       "max_seconds": 120.0, "run_dir": str(tmp_path)})
    summary = main(cfg)
    assert summary.best_eval >= 475.0, f"evaluations {summary.eval_means}"
    assert summary.stop_reason.startswith("evaluation mean")
    assert all("resource_tracker" in cmd for _, cmd in children_of(os.getpid()))


def test_atari_smoke(tmp_path):
    cfg = make_config({"gorila": True, "env_id": "ALE/Pong-v5", "num_workers": 1, "envs_per_actor": 2,
                       "total_steps": 400, "learning_starts": 160, "batch_size": 32, "replay_capacity": 2000,
                       "eval_interval_seconds": 0.0, "run_dir": str(tmp_path)})
    summary = main(cfg)
    assert summary.env_steps >= 400
    payload = torch.load(summary.checkpoint, weights_only=True)
    assert payload["updates"] > 0 and payload["dropped_gradients"] == 0
    assert all(torch.isfinite(t).all() for t in payload["model"].values())
    assert payload["model"]["torso.conv1.weight"].shape == (16, 4, 8, 8)


def child_pids(pid):
    return [child for child, cmd in children_of(pid) if "spawn_main" in cmd]


def unowned_new_shm(before: set[str]) -> set[str]:
    """/dev/shm entries made since `before` that no live process maps: a finished run's leftovers, not
    the segments of other runs on the box (other tests, benchmarks) that come and go meanwhile."""
    mapped = set()
    for maps in Path("/proc").glob("[0-9]*/maps"):
        try:
            mapped.update(line.rsplit("/", 1)[-1] for line in maps.read_text().splitlines() if "/dev/shm/" in line)
        except OSError:
            continue
    return {name for name in shm_entries() - before if name not in mapped}


def test_ctrl_c_saves_a_checkpoint_and_leaves_nothing_behind(tmp_path):
    shm_before = shm_entries()
    proc = start_training("apex.train", *FAST, "--run-dir", str(tmp_path / "run"), log=tmp_path / "log")
    assert wait_for(lambda: len(child_pids(proc.pid)) >= 3, 60), "bundles and evaluator start"
    assert wait_for(lambda: logged_updates(tmp_path / "run")[-1:] > [0], 60), "the server is applying gradients"
    os.killpg(proc.pid, signal.SIGINT)
    started = time.monotonic()
    proc.wait(timeout=15)
    log = (tmp_path / "log").read_text()
    assert time.monotonic() - started < 10, f"Ctrl-C exits within 10 s\n{log}"
    assert proc.returncode == 130, log
    assert "interrupted" in log and "Traceback" not in log and "parameter server:" in log, log
    assert wait_for(lambda: not processes_in_group(proc.pid), 5), "no process of the run is left"
    left = unowned_new_shm(shm_before)
    assert not left, f"no /dev/shm segment is left: {left}"
    payload = torch.load(sorted((tmp_path / "run").glob("ckpt-*.pt"))[-1], weights_only=True)
    assert payload["meta"]["algo"] == "gorila" and payload["updates"] > 0
    assert set(payload) >= {"model", "target", "optimizer", "counters", "wall_seconds", "dropped_gradients"}


def test_a_killed_bundle_is_restarted_and_the_server_goes_on(tmp_path):
    run = tmp_path / "run"
    proc = start_training("apex.train", *FAST, "--max-seconds", "20", "--run-dir", str(run), log=tmp_path / "log")
    assert wait_for(lambda: len(child_pids(proc.pid)) >= 3, 60)
    assert wait_for(lambda: logged_updates(run)[-1:] > [0], 30), "the server is applying gradients"
    victim = sorted(child_pids(proc.pid))[0]  # bundle-0, started before the evaluator
    at_kill = logged_updates(run)[-1]
    os.kill(victim, signal.SIGKILL)
    assert wait_for(lambda: victim not in child_pids(proc.pid) and len(child_pids(proc.pid)) >= 3, 15), \
        "a replacement starts"
    proc.wait(timeout=60)
    log = (tmp_path / "log").read_text()
    assert proc.returncode == 0, log
    assert f"bundle-0 (pid {victim}) died with exit code -9" in log and "worker restarts 1" in log
    assert logged_updates(run)[-1] > at_kill > 0, "the server kept applying gradients"
    assert wait_for(lambda: not processes_in_group(proc.pid), 5), "no process of the run is left"


def test_resume_continues_the_servers_counters(tmp_path):
    run = tmp_path / "run"
    common = ["--gorila", "--eval-interval-seconds", "0", "--learning-starts", "300", "--num-workers", "1"]
    first = subprocess.run([sys.executable, "-m", "apex.train", *common, "--total-steps", "3000",
                            "--run-dir", str(run)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    before = torch.load(sorted(run.glob("ckpt-*.pt"))[-1], weights_only=True)
    second = subprocess.run([sys.executable, "-m", "apex.train", "--resume", str(run), "--total-steps", "6000"],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert second.returncode == 0, second.stderr
    assert "resumed from" in second.stdout and "gorila on CartPole-v1" in second.stdout
    after = torch.load(sorted(run.glob("ckpt-*.pt"))[-1], weights_only=True)
    assert before["counters"]["steps"].sum() >= 3000 and after["counters"]["steps"].sum() >= 6000
    assert after["updates"] > before["updates"] > 0
    assert after["optimizer"]["state"][0]["step"] > before["optimizer"]["state"][0]["step"]
    # one bundle sends a gradient only once the server has applied its last: every one on the current parameters
    assert before["staleness_max"] == after["staleness_max"] == after["staleness_total"] == 0


@pytest.mark.parametrize("argv, expected", [
    (["--gorila", "--serial"], "--gorila and --serial are two different modes"),
    (["--gorila", "--target-tau", "0.01"], "--target-tau does not apply"),
    (["--gorila", "--gorila-max-staleness", "-1"], "--gorila-max-staleness must not be negative"),
    (["--gorila", "--gorila-loss-outlier-stds", "-2"], "--gorila-loss-outlier-stds must not be negative"),
    (["--gorila", "--num-workers", "0"], "--num-workers must be positive"),
    (["--gorila", "--env-id", "NoSuchEnv-v0"], "unknown or unusable env id"),
    (["--gorila", "--resume", "/nonexistent/run"], "cannot resume"),
])
def test_bad_input_gives_one_clear_line(capsys, argv, expected):
    assert expected in one_error_line(cli, capsys, argv)


def test_an_unwritable_run_dir_is_one_line_and_frees_the_replays(tmp_path, capsys, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("")
    closed = []
    close = TransitionReplay.close
    monkeypatch.setattr(TransitionReplay, "close", lambda replay: (closed.append(id(replay)), close(replay)))
    shm_before = shm_entries()
    line = one_error_line(cli, capsys, ["--gorila", "--num-workers", "3", "--eval-interval-seconds", "0",
                                        "--run-dir", str(blocker)])
    assert "cannot write the run directory" in line and "a file of that name exists" in line
    assert len(closed) == 3, "the owner closes (unlinks) every bundle's replay, not the garbage collector"
    gc.collect()  # the replays' lock semaphores go with their objects, which the error's traceback kept in a cycle
    assert not unowned_new_shm(shm_before)


def test_an_apex_checkpoint_is_not_resumed_as_gorila(tmp_path, capsys):
    run = tmp_path / "run"
    assert cli(["--serial", "--total-steps", "200", "--eval-interval-seconds", "0", "--run-dir", str(run)]) == 0
    capsys.readouterr()
    assert "was made for algo 'dqn'" in one_error_line(cli, capsys, ["--resume", str(run), "--serial", "false",
                                                                      "--gorila"])


def test_benchmark_rate_and_counts_by_hand():
    metrics = [{"wall_seconds": 1.0, "updates": 0}, {"wall_seconds": 2.0, "updates": 10},
               {"wall_seconds": 4.0, "updates": 50}, {"wall_seconds": 6.0, "updates": 130}]
    assert applied_per_second(metrics) == 30.0  # (130 - 10) / (6 - 2): from the first applied gradient
    assert np.isnan(applied_per_second(metrics[:2]))
    output = ("...\nparameter server: 1,234 gradients applied, 56 dropped as more than 64 updates stale (4.3%); "
              "the applied ones were 1.25 updates stale on average, at most 7; 0 discarded by the bundles\n")
    assert server_counts(output) == (1234, 56)
    assert server_staleness(output) == (1.25, 7)
    with pytest.raises(ValueError, match="no staleness"):
        server_staleness("parameter server: 1 gradients applied, 0 dropped\n")
