"""The Ray backend (`--backend ray`) on one machine: a `ray.cluster_utils.Cluster` with a head node of no
CPUs (the learner's: the replay shards and the parameter store are pinned there) and a second node with
the CPUs, so that every actor runs on the second node.

The sharded replay samples as one replay: the split of a batch follows the shards' totals exactly, and
the importance weights use the global minimum (Schaul et al. 2016, section 3.4).
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install -e '.[ray]')")

from ray.cluster_utils import Cluster  # noqa: E402

from apex.config import make_config as apex_config  # noqa: E402
from apex.network import make_network  # noqa: E402
from apex.train import main as apex_main  # noqa: E402
from benchmarks.ray_backend import driver_references, object_store_bytes  # noqa: E402
from common.distributed.ray_params import state_arrays  # noqa: E402
from common.errors import RunFailure  # noqa: E402
from common.distributed.ray_replay import (ReplayShard, ShardedReplay, ShardWriter, concat_batches,  # noqa: E402
                                           global_keys, split_prefix_sums)
from common.recipe import describe_env  # noqa: E402
from common.replay.transition import TransitionBatch, TransitionReplay, TransitionReplayConfig  # noqa: E402
from r2d2.config import make_config as r2d2_config  # noqa: E402
from r2d2.train import main as r2d2_main  # noqa: E402
from tests.helpers import ROOT, shm_entries, start_training, wait_for  # noqa: E402


def test_prefix_sums_split_across_shards_by_their_totals():
    """Totals 1 and 3, a batch of 4 with every uniform 0.5: draws (k + 0.5) * 4 / 4 = 0.5, 1.5, 2.5, 3.5;
    the first falls in shard 0 ([0, 1)), the rest in shard 1 ([1, 4)) at 0.5, 1.5, 2.5 of its own."""
    parts = split_prefix_sums(np.array([1.0, 3.0]), np.full(4, 0.5))
    assert parts[0].tolist() == [0.5]
    assert parts[1].tolist() == [0.5, 1.5, 2.5]


def test_global_keys_name_their_shard():
    """Key 5 of shard 1 of 3 is 5 * 3 + 1 = 16; 16 % 3 = 1 and 16 // 3 = 5 take it back."""
    assert global_keys(np.array([5]), 1, 3).tolist() == [16]


def test_batches_concatenate_field_by_field():
    a = TransitionBatch(*(np.array([i]) for i in range(8)))
    b = TransitionBatch(*(np.array([10 + i, 20 + i]) for i in range(8)))
    both = concat_batches([a, b])
    assert both.action.tolist() == [1, 11, 21] and both.weight.tolist() == [7, 17, 27]


@pytest.fixture(scope="module")
def cluster():
    """A head node without CPUs and a second node with 2."""
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "object_store_memory": 200 << 20,
                                                            "include_dashboard": False})
    cluster.add_node(num_cpus=2, object_store_memory=200 << 20)
    ray.init(address=cluster.address, include_dashboard=False, log_to_driver=True)
    yield cluster
    ray.shutdown()
    cluster.shutdown()


def _vector_config(capacity: int) -> TransitionReplayConfig:
    return TransitionReplayConfig(capacity=capacity, frame_shape=(1,), frame_dtype="float32", alpha=1.0)


def _fill(shard, priorities: list[float]) -> None:
    """One transition per priority, its frame holding the priority itself (to recognise it in a batch)."""
    from common.replay.transition import TransitionWriter
    writer = TransitionWriter(ShardWriter(shard, _vector_config(8), max_in_flight=2), block_size=len(priorities))
    for p in priorities:
        obs = writer.add_frame(np.array([p], np.float32), True)
        nxt = writer.add_frame(np.array([p], np.float32), False)
        writer.add(obs, 0, 0.0, 0.0, nxt, p)
    writer.flush()
    writer.replay.flush()


def _shards(cluster, *priorities: list[float]) -> ShardedReplay:
    shards = [ray.remote(ReplayShard).options(num_cpus=0).remote(TransitionReplay, _vector_config(8))
              for _ in priorities]
    for shard, ps in zip(shards, priorities):
        _fill(shard, ps)
    replay = ShardedReplay(shards, _vector_config(16))
    replay.refresh()
    return replay


def test_two_shards_split_a_batch_by_priority_and_weigh_by_the_global_minimum(cluster):
    """Shard 0 holds priorities 1 and 2, shard 1 holds 4 (alpha 1): total 7. A batch of 7 has one draw per
    stratum of width 1, so [0, 1) gives the item of 1 once, [1, 3) the item of 2 twice, [3, 7) the item of 4
    four times, whatever the uniforms. Weights (p / p_min)^-beta with the global p_min = 1, beta 0.5:
    1, 2^-0.5 = 0.70711, 4^-0.5 = 0.5."""
    replay = _shards(cluster, [1.0, 2.0], [4.0])
    assert len(replay) == 3 and replay.inserted() == 3
    batch = replay.sample(7, 0.5, np.random.default_rng(0))
    seen = sorted(zip(batch.obs[:, 0].tolist(), batch.weight.tolist()))
    assert [p for p, _ in seen] == [1.0, 2.0, 2.0, 4.0, 4.0, 4.0, 4.0]
    assert [w for _, w in seen] == pytest.approx([1.0, 0.70711, 0.70711, 0.5, 0.5, 0.5, 0.5], abs=1e-5)
    # a priority update reaches the item's shard by its global key
    key_of_4 = int(batch.key[batch.obs[:, 0] == 4.0][0])
    assert key_of_4 % 2 == 1
    assert replay.update_priorities(np.array([key_of_4]), np.array([1.0])) == 1
    replay.drain()
    assert replay.refresh().sums.tolist() == [3.0, 1.0]


def test_a_shard_whose_total_shrank_since_the_split_scales_its_draws(cluster):
    """Shard 0 holds 2 and 4, shard 1 holds 3 and 1 (alpha 1): totals 6 and 4. After a batch, the item of 3
    is set to 1, and that update travels with the next batch, whose split still uses the totals 6 and 4:
    shard 1 gets draws in [0, 1), [1, 2), [2, 3), [3, 4) while its own total is now 2 (1 and 1). Scaled by
    2 / 4 they fall in [0, 0.5), [0.5, 1), [1, 1.5), [1.5, 2): each item twice, in proportion to their
    priorities. Clamped at the total instead, the last item would take 3 of the 4. Shard 0 is unchanged:
    2 twice, 4 four times."""
    replay = _shards(cluster, [2.0, 4.0], [3.0, 1.0])
    first = replay.sample(10, 0.0, np.random.default_rng(0))
    key_of_3 = int(first.key[first.obs[:, 0] == 3.0][0])
    replay.update_priorities(np.array([key_of_3]), np.array([1.0]))
    assert replay.known.sums.tolist() == [6.0, 4.0]
    second = replay.sample(10, 0.0, np.random.default_rng(1))
    assert sorted(second.obs[:, 0].tolist()) == [1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 4.0, 4.0, 4.0, 4.0]
    assert replay.known.sums.tolist() == [6.0, 2.0]


def test_a_hung_shard_ends_each_wait_with_a_run_failure_naming_the_request(cluster):
    """A shard that never answers is alive to Ray, so it is never restarted: the learner's request fails
    after `answer_seconds` instead of waiting for ever, and the drain at the end after its own wait."""
    class Hung:
        def totals(self):
            time.sleep(3600)

        def apply_updates(self, updates):
            time.sleep(3600)

    shard = ray.remote(Hung).options(num_cpus=0, max_concurrency=2).remote()
    replay = ShardedReplay([shard], _vector_config(8), answer_seconds=0.5)
    try:
        start = time.monotonic()
        with pytest.raises(RunFailure, match=r"^no answer from the replay shards for their totals in 0.5 s"):
            replay.refresh()
        replay.update_priorities(np.array([0]), np.array([1.0]))
        with pytest.raises(RunFailure, match=r"^no answer from the replay shards to priority updates in 0.2 s"):
            replay.drain(0.2)
        assert time.monotonic() - start < 30
    finally:
        ray.kill(shard)


def test_sharded_sampling_matches_one_replays_distribution(cluster):
    """Items of priorities 1..6 over two shards (1, 2, 3 and 4, 5, 6), alpha 1: item p is drawn with
    probability p / 21, as from one replay. Chi-square over 200 batches of 21 against 20.52, the 0.001
    critical value with 5 degrees of freedom."""
    replay = _shards(cluster, [1.0, 2.0, 3.0], [4.0, 5.0, 6.0])
    rng = np.random.default_rng(1)
    counts = dict.fromkeys(range(1, 7), 0)
    for _ in range(200):
        for p in replay.sample(21, 0.0, rng).obs[:, 0]:
            counts[int(p)] += 1
    expected = {p: 200 * 21 * p / 21 for p in counts}
    chi2 = sum((counts[p] - expected[p]) ** 2 / expected[p] for p in counts)
    assert chi2 < 20.52, counts


def test_a_writer_refers_to_its_frames_by_the_shards_ids_once_answered(cluster):
    """Two blocks of one env, the second's transition refers to a frame of the first: the shard must get
    the frame's own id back (the writer's ids are its own numbering until the first insert is answered)."""
    shard = ray.remote(ReplayShard).options(num_cpus=0).remote(TransitionReplay, _vector_config(8))
    from common.replay.transition import TransitionWriter
    client = ShardWriter(shard, _vector_config(8), max_in_flight=4)
    writer = TransitionWriter(client, block_size=1)
    first = writer.add_frame(np.array([7.0], np.float32), True)
    second = writer.add_frame(np.array([8.0], np.float32), False)
    writer.add(first, 0, 1.0, 0.9, second, 1.0)  # block 1: both frames new
    third = writer.add_frame(np.array([9.0], np.float32), False)
    writer.add(second, 1, 2.0, 0.9, third, 1.0)  # block 2: o_t is block 1's frame
    client.flush()
    assert client.num_inserted == 2 and client.num_dropped == 0
    replay = ShardedReplay([shard], _vector_config(8))
    replay.refresh()
    batch = replay.sample(2, 0.0, np.random.default_rng(0))
    pairs = sorted(zip(batch.obs[:, 0].tolist(), batch.next_obs[:, 0].tolist()))
    assert pairs == [(7.0, 8.0), (8.0, 9.0)]


def _record_objects(address: str, stop: threading.Event, out: list[tuple[float, int, int]]) -> None:
    start = time.monotonic()
    while not stop.wait(2.0):
        out.append((time.monotonic() - start, object_store_bytes(address), driver_references()))


def _alive_actors() -> list[str]:
    return [a["ActorClassName"] for a in ray._private.state.actors().values() if a["State"] != "DEAD"]


def _actor_nodes(out: str) -> set[str]:
    return {line.split("runs on node ")[1].split()[0] for line in out.splitlines() if "runs on node" in line}


def test_apex_learns_cartpole_with_its_actors_on_the_second_node(cluster, tmp_path, capsys):
    cfg = apex_config({"env_id": "CartPole-v1", "backend": "ray", "ray_address": cluster.address,
                       "num_workers": 2, "seed": 0, "stop_return": 475.0, "max_seconds": 90.0,
                       "run_dir": str(tmp_path)})
    summary = apex_main(cfg)
    assert summary.best_eval >= 475.0, f"evaluations {summary.eval_means}"
    nodes = _actor_nodes(capsys.readouterr().out)
    assert len(nodes) == 1 and cluster.head_node.node_id not in nodes
    assert not _alive_actors()
    # a resumed run goes on from the checkpoint's steps (its replay is refilled: shards are not saved)
    resumed = apex_main(apex_config({"resume": str(tmp_path), "total_steps": summary.env_steps + 2_000,
                                     "stop_return": None, "eval_interval_seconds": 0.0}))
    assert resumed.stop_reason.startswith("reached --total-steps")
    assert summary.env_steps + 2_000 <= resumed.env_steps


def test_r2d2_learns_cartpole_without_velocities_on_the_second_node(cluster, tmp_path):
    from r2d2.envs import ENV_ID
    cfg = r2d2_config({"env_id": ENV_ID, "backend": "ray", "ray_address": cluster.address, "num_workers": 2,
                       "seed": 0, "stop_return": 150.0, "max_seconds": 120.0, "run_dir": str(tmp_path)})
    summary = r2d2_main(cfg)
    assert summary.best_eval >= 150.0, f"evaluations {summary.eval_means}"
    assert not _alive_actors()


def test_a_killed_actor_is_restarted_and_the_object_store_stays_bounded(cluster, tmp_path):
    """45 s of Ape-X on Pong (frames, parameters and batches all large enough for the object store).
    One actor's process is killed at 15 s: the run restarts it and finishes. From 10 s after the kill, the
    bytes the object store holds for someone (primary copies) stay within what the run's bounded requests
    hold (`_bounded_store_bytes`), and the driver's references do not grow."""
    cfg = apex_config({"env_id": "ALE/Pong-v5", "backend": "ray", "ray_address": cluster.address,
                       "num_workers": 2, "envs_per_actor": 2, "learning_starts": 500, "batch_size": 32,
                       "replay_capacity": 20_000, "max_seconds": 45.0, "eval_interval_seconds": 0.0,
                       "run_dir": str(tmp_path)})
    stop, samples = threading.Event(), []
    recorder = threading.Thread(target=_record_objects, args=(cluster.address, stop, samples), daemon=True)
    killer = threading.Thread(target=_kill_an_actor_after, args=(15.0,), daemon=True)
    recorder.start(), killer.start()
    try:
        summary = apex_main(cfg)
    finally:
        stop.set()
        recorder.join()
    assert summary.restarts >= 1
    assert summary.stop_reason.startswith("reached --max-seconds")
    assert not _alive_actors()
    late = [s for s in samples if s[0] > 25.0]
    warm = [s for s in samples if 8.0 < s[0] <= 25.0]
    assert late and warm, samples
    assert max(s[1] for s in late) <= _bounded_store_bytes(cfg), samples
    assert max(s[2] for s in late) <= max(s[2] for s in warm) + 8, samples


def _bounded_store_bytes(cfg) -> int:
    """Two parameter copies (the store's newest and the one before, which an actor may still be reading),
    every actor's unanswered inserts (blocks of `replay_block_size` new frames) and the one batch the
    prefetch thread waits for (stacked observations and next observations). A leak of any of them
    passes this within seconds: the run publishes, inserts and samples many times a second."""
    probe = describe_env(cfg.env_id, cfg.seed, cfg.frame_stack)
    model = make_network(cfg, probe.obs_shape, probe.num_actions)
    param_bytes = sum(a.nbytes for a in state_arrays(model).values())  # what the learner puts in the store
    frame_bytes = int(np.prod(probe.obs_shape[1:]))  # uint8 frames: obs_shape is [stack, height, width]
    inserts = cfg.num_workers * cfg.inserts_in_flight * cfg.replay_block_size * frame_bytes
    batch = cfg.batch_size * 2 * int(np.prod(probe.obs_shape))
    return 2 * param_bytes + inserts + batch


def _kill_an_actor_after(seconds: float) -> None:
    time.sleep(seconds)
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = open(f"/proc/{entry}/cmdline", "rb").read()
            except OSError:
                continue
            if b"ray::ActorHost" in cmdline:
                os.kill(int(entry), signal.SIGKILL)
                return


def test_ctrl_c_leaves_no_ray_process_and_no_segment(tmp_path):
    """A run with a Ray instance of its own, interrupted: it exits, and nothing of it is left."""
    before = shm_entries()
    proc = start_training("apex.train", "--backend", "ray", "--env-id", "CartPole-v1", "--num-workers", "2",
                          "--max-seconds", "120", "--eval-interval-seconds", "0", "--run-dir", str(tmp_path / "run"),
                          log=tmp_path / "log")
    assert wait_for(lambda: "steps" in (tmp_path / "log").read_text() or proc.poll() is not None, 90.0)
    assert proc.poll() is None, (tmp_path / "log").read_text()
    os.killpg(proc.pid, signal.SIGINT)
    assert proc.wait(60) == 130, (tmp_path / "log").read_text()
    assert wait_for(lambda: not _ray_processes_of(proc.pid), 20.0), _ray_processes_of(proc.pid)
    assert not {e for e in shm_entries() - before if e.startswith("asyncrl_")}
    assert list((tmp_path / "run").glob("ckpt-*.pt"))


def _ray_processes_of(pgid: int) -> list[str]:
    """Processes of the session that ran the training command (Ray's included)."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()
                cmd = open(f"/proc/{entry}/cmdline", "rb").read().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if fields[0] != "Z" and int(fields[3]) == pgid:  # the session id
                out.append(cmd)
    return out


def test_without_ray_the_backend_is_one_line():
    code = ("import sys; sys.modules['ray'] = None; from apex.train import cli; "
            "sys.exit(cli(['--backend', 'ray', '--env-id', 'CartPole-v1']))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert done.stderr.strip().count("\n") == 0 and "pip install" in done.stderr, done.stderr


@pytest.mark.parametrize("address, expected", [("127.0.0.1:1", "cannot reach a Ray cluster"),
                                               ("nohost", "must be auto or host:port")])
def test_an_unusable_ray_address_is_one_line(address, expected, tmp_path):
    """In a process of its own: this one is connected to the test cluster already."""
    done = subprocess.run([sys.executable, "-m", "apex.train", "--backend", "ray", "--ray-address", address,
                           "--run-dir", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert expected in done.stderr and done.stderr.strip().count("\n") == 0, done.stderr
