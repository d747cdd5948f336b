"""Prioritized replays: frequencies, weights, stale updates, frame stacks, save/load, and a stress test."""
import multiprocessing as mp
import os
import time
from dataclasses import replace

import numpy as np
import pytest

from common.replay.sequence import SequenceBatch, SequenceReplay, SequenceReplayConfig, SequenceWriter
from common.replay.transition import TransitionBlock, TransitionReplay, TransitionReplayConfig, TransitionWriter
from common.replay.shm import SHM_DIR

pytestmark = pytest.mark.timeout(120)


def vector_replay(capacity: int, alpha: float = 1.0, **kwargs) -> TransitionReplay:
    return TransitionReplay.create(TransitionReplayConfig(capacity, frame_shape=(2,), frame_dtype="float32", alpha=alpha, **kwargs))


def insert_vector_items(replay: TransitionReplay, priorities, first_action: int = 0) -> None:
    """Item k: obs [k, 0], next_obs [k, 1], action first_action + k."""
    count = len(priorities)
    frames = np.stack([[[k, 0.0], [k, 1.0]] for k in range(count)]).reshape(2 * count, 2)
    refs = np.arange(2 * count).reshape(count, 2)
    replay.insert(TransitionBlock(frames, [], refs[:, :1], refs[:, 1:], first_action + np.arange(count),
                                  np.ones(count), np.full(count, 0.99), np.asarray(priorities, dtype=np.float64)))


def segments_of(replay) -> str:
    return os.path.join(SHM_DIR, replay.handle.shm.segment_name)


def test_importance_weights_by_hand():
    # alpha = 1, priorities 1, 2, 4, 8: P = [1, 2, 4, 8] / 15, N P = [4, 8, 16, 32] / 15.
    # beta = 1: w = 15/4, 15/8, 15/16, 15/32, divided by the max 15/4: 1, 0.5, 0.25, 0.125.
    # beta = 0.5: square roots: 1, 0.70710678, 0.5, 0.35355339. beta = 0: all 1.
    replay = vector_replay(4)
    insert_vector_items(replay, [1.0, 2.0, 4.0, 8.0])
    rng = np.random.default_rng(0)
    for beta, expected in [(1.0, [1, 0.5, 0.25, 0.125]), (0.5, [1, 0.70710678, 0.5, 0.35355339]), (0.0, [1, 1, 1, 1])]:
        batch = replay.sample(64, beta, rng)
        assert np.allclose(batch.weight, np.array(expected)[batch.action], rtol=1e-6)
    assert np.array_equal(batch.obs[:, 0], batch.action.astype(np.float32))
    assert np.all(batch.next_obs[:, 1] == 1.0) and np.all(batch.discount == np.float32(0.99))
    replay.close()


def test_sampling_frequencies_follow_priority_to_the_alpha():
    # Priorities 1..8, alpha 0.6: P(i) = i^0.6 / sum_j j^0.6. 32,000 draws; chi-square, 7 dof,
    # 0.1% critical value 24.32. With alpha ignored (P proportional to i) chi2 is in the thousands.
    replay = vector_replay(8, alpha=0.6)
    insert_vector_items(replay, np.arange(1.0, 9.0))
    rng = np.random.default_rng(7)
    counts = np.zeros(8)
    for _ in range(500):
        counts += np.bincount(replay.sample(64, 0.4, rng).action, minlength=8)
    p = np.arange(1.0, 9.0) ** 0.6
    expected = counts.sum() * p / p.sum()
    assert ((counts - expected) ** 2 / expected).sum() < 24.32, counts
    replay.close()


def test_update_priorities_and_stale_keys():
    replay = vector_replay(4)
    insert_vector_items(replay, [1.0, 1.0, 1.0, 1.0])
    batch = replay.sample(4, 0.0, np.random.default_rng(0))  # equal priorities: each item once
    assert sorted(batch.action.tolist()) == [0, 1, 2, 3]
    # Item 0 to priority 0 (never sampled again); repeated key 1: the last value (3) wins.
    keys = np.concatenate([batch.key[batch.action == 0], batch.key[batch.action == 1], batch.key[batch.action == 1]])
    assert replay.update_priorities(keys, [0.0, 9.0, 3.0]) == 3
    assert replay.storage.ring.tree.leaves().tolist() == [0.0, 3.0, 1.0, 1.0]
    # Overwrite slots 0 and 1 with new items of priority 5; the old keys must not touch them.
    insert_vector_items(replay, [5.0, 5.0], first_action=10)
    assert replay.update_priorities(batch.key, np.full(4, 100.0)) == 2  # only items 2 and 3 still live
    assert replay.storage.ring.tree.leaves().tolist() == [5.0, 5.0, 100.0, 100.0]
    assert len(replay) == 4
    replay.close()


def test_batch_buffers_recycled_only_when_released():
    replay = vector_replay(64)
    insert_vector_items(replay, np.ones(64))
    rng = np.random.default_rng(0)
    held = replay.sample(32, 0.4, rng)
    snapshot = held.obs.copy()
    for _ in range(6):  # more samples than the pool holds buffers
        other = replay.sample(32, 0.4, rng)
        assert not np.shares_memory(other.obs, held.obs)
    assert np.array_equal(held.obs, snapshot)  # a held batch is never written into
    del other
    addresses = {replay.sample(32, 0.4, rng).obs.__array_interface__["data"][0] for _ in range(5)}
    assert len(addresses) == 1  # each batch released at once: one buffer serves them all
    replay.close()


class CountingFrames:
    """A tiny env whose 6x5 uint8 frame encodes (episode, step); episodes have given lengths."""

    def __init__(self, lengths):
        import gymnasium as gym

        self.env = self._make(gym, lengths)

    @staticmethod
    def _make(gym, lengths):
        class Env(gym.Env):
            observation_space = gym.spaces.Box(0, 255, (6, 5), np.uint8)
            action_space = gym.spaces.Discrete(2)

            def __init__(self):
                self.episode, self.t = -1, 0

            def frame(self):
                return np.full((6, 5), 10 * self.episode + self.t, dtype=np.uint8)

            def reset(self, *, seed=None, options=None):
                self.episode, self.t = self.episode + 1, 0
                return self.frame(), {}

            def step(self, action):
                self.t += 1
                return self.frame(), float(self.t), self.t == lengths[self.episode], False, {}

        return Env()


@pytest.mark.parametrize("stack", [4, 1])
def test_stacks_match_frame_stack_observation_across_episode_starts(stack):
    from gymnasium.wrappers import FrameStackObservation

    n, gamma, lengths = 3, 0.5, [5, 1, 2, 7]
    env = FrameStackObservation(CountingFrames(lengths).env, stack)
    replay = TransitionReplay.create(TransitionReplayConfig(100, frame_shape=(6, 5), frame_stack=stack))
    writer = TransitionWriter(replay, block_size=4)
    expected = []  # (obs, reward_n, discount_n, next_obs) per transition, from the wrapper itself
    for _ in lengths:
        obs, _ = env.reset()
        observations, steps, rewards, done = [obs], [writer.add_frame(obs[-1], True)], [], False
        while not done:
            obs, reward, done, _, _ = env.step(0)
            observations.append(obs)
            steps.append(writer.add_frame(obs[-1], False))
            rewards.append(reward)
        for t in range(len(rewards)):  # n-step: truncated at the episode end, discount 0 past it
            end = min(t + n, len(rewards))
            reward_n = sum(gamma ** k * rewards[t + k] for k in range(end - t))
            discount_n = 0.0 if end == len(rewards) else gamma ** n
            writer.add(steps[t], len(expected), reward_n, discount_n, steps[end])
            expected.append((observations[t], reward_n, discount_n, observations[end]))
    writer.flush()
    assert len(replay) == len(expected) == 15
    batch = replay.sample(15, 0.4, np.random.default_rng(0))  # equal priorities: every item once
    assert sorted(batch.action.tolist()) == list(range(15))
    for i, action in enumerate(batch.action):
        obs, reward_n, discount_n, next_obs = expected[action]
        assert batch.obs[i].shape == (stack, 6, 5)
        assert np.array_equal(batch.obs[i], obs) and np.array_equal(batch.next_obs[i], next_obs)
        assert batch.reward[i] == np.float32(reward_n) and batch.discount[i] == np.float32(discount_n)
    # Episode 2 (one step) starts 6 frames in: its stack is 4 copies of its own first frame.
    assert np.all(batch.obs[batch.action == 5] == 10) if stack == 4 else True
    replay.close()


def test_cartpole_observations_stored_directly():
    import gymnasium as gym

    env = gym.make("CartPole-v1")
    replay = TransitionReplay.create(TransitionReplayConfig(64, frame_shape=(4,), frame_dtype="float32"))
    writer = TransitionWriter(replay, block_size=8)
    obs, _ = env.reset(seed=3)
    step, expected = writer.add_frame(obs, True), []
    while len(expected) < 40:
        next_obs, reward, terminated, truncated, _ = env.step(len(expected) % 2)
        next_step = writer.add_frame(next_obs, False)
        writer.add(step, len(expected), reward, 0.0 if terminated else 0.99, next_step)
        expected.append((obs, next_obs))
        obs, step = next_obs, next_step
        if terminated or truncated:
            obs, _ = env.reset()
            step = writer.add_frame(obs, True)
    writer.flush()
    batch = replay.sample(40, 0.4, np.random.default_rng(0))
    assert batch.obs.shape == (40, 4) and batch.obs.dtype == np.float32
    for i, action in enumerate(batch.action):
        assert np.array_equal(batch.obs[i], expected[action][0])
        assert np.array_equal(batch.next_obs[i], expected[action][1])
    replay.close()


def test_lagging_writer_does_not_evict_everything():
    # Frame ring 140 for capacity 100. Writer A's last frame is 120 frames old when A next refers to
    # it; pinning that old slot would, once it is reused 20 frames later, evict every item up to A's
    # new one (~120 keys). The replay re-copies such old history frames instead: the ring stays full.
    replay = TransitionReplay.create(TransitionReplayConfig(100, frame_shape=(1,), frame_dtype="int64", num_frames=140))
    lagging, busy = TransitionWriter(replay, block_size=1), TransitionWriter(replay, block_size=10)

    def run_busy(num_steps: int) -> None:
        previous = busy.add_frame(np.array([busy._num_steps]), episode_start=True)
        for _ in range(num_steps):
            step = busy.add_frame(np.array([1000 + busy._num_steps]), False)
            busy.add(previous, 0, 0.0, 0.9, step)
            previous = step
        busy.flush()

    first = lagging.add_frame(np.array([-7]), True)
    lagging.flush()
    run_busy(119)
    second = lagging.add_frame(np.array([-8]), False)
    lagging.add(first, 1, 0.0, 0.9, second)  # refers to a frame written 120 frames ago
    run_busy(60)
    assert len(replay) == 100 and lagging.num_dropped == 0
    batch = replay.sample(100, 0.0, np.random.default_rng(0))
    mine = batch.action == 1
    assert mine.sum() == 1 and batch.obs[mine].tolist() == [[-7]] and batch.next_obs[mine].tolist() == [[-8]]
    replay.close()


def test_transition_save_load_round_trip(tmp_path):
    config = TransitionReplayConfig(6, frame_shape=(2,), frame_dtype="float32", alpha=0.7)
    replay = TransitionReplay.create(config)
    insert_vector_items(replay, [1.0, 2.0, 3.0, 4.0])
    insert_vector_items(replay, [5.0, 6.0, 7.0], first_action=4)  # wraps: 7 items in 6 slots
    path = str(tmp_path / "replay.npz")
    replay.save(path)
    restored = TransitionReplay.create(config)
    restored.load(path)
    for name, value in replay.storage.arrays.arrays.items():
        assert np.array_equal(restored.storage.arrays[name], value), name
    assert len(restored) == 6
    first = replay.sample(32, 0.5, np.random.default_rng(5))
    second = restored.sample(32, 0.5, np.random.default_rng(5))
    for a, b in zip(first, second):
        assert np.array_equal(a, b)
    # The cursor came back too: the next insert overwrites slot 1 in both.
    insert_vector_items(restored, [9.0], first_action=100)
    assert restored.storage.arrays["action"][1] == 100

    with open(path, "rb") as f:
        data = f.read()
    for bad in (data[: len(data) // 2], b"not a zip file", data[:100] + bytes(len(data) - 100)):
        with open(path, "wb") as f:
            f.write(bad)
        with pytest.raises(ValueError):
            restored.load(path)
    other = TransitionReplay.create(TransitionReplayConfig(7, frame_shape=(2,), frame_dtype="float32"))
    replay.save(path)
    with pytest.raises(ValueError, match="config"):
        other.load(path)
    for r in (replay, restored, other):
        r.close()


def make_sequence_replay(capacity: int = 8) -> SequenceReplay:
    return SequenceReplay.create(SequenceReplayConfig(capacity, obs_shape=(2,), state_size=3, length=4, overlap=2, obs_dtype="float32"))


def test_sequence_writer_overlap_padding_and_round_trip(tmp_path):
    # Length 4, overlap 2: an episode of 7 steps gives sequences of steps [0-3], [2-5], [4-6 + pad];
    # the next episode of 2 steps gives [0-1 + 2 pads]. h at a sequence start is that step's state.
    replay = make_sequence_replay()
    writer = SequenceWriter(replay, block_size=2, priority_fn=lambda seq: float(seq["mask"].sum()))
    for episode, length in enumerate([7, 2]):
        for t in range(length):
            state = np.full(3, 100 * episode + t, dtype=np.float32)
            writer.add_step(np.array([episode, t]), t, 1.0, 0.9, state, -state)
        writer.end_episode()
    writer.flush()
    assert len(replay) == 4
    arrays = replay.storage.arrays
    assert arrays["obs"][:4, :, 1].tolist() == [[0, 1, 2, 3], [2, 3, 4, 5], [4, 5, 6, 0], [0, 1, 0, 0]]
    assert arrays["mask"][:4].sum(axis=1).tolist() == [4, 4, 3, 2]
    assert arrays["h"][:4, 0].tolist() == [0, 2, 4, 100] and arrays["c"][3, 0] == -100
    assert replay.storage.ring.tree.leaves()[:4].tolist() == pytest.approx(np.array([4, 4, 3, 2]) ** 0.9)
    batch = replay.sample(16, 0.6, np.random.default_rng(0))
    assert batch.obs.shape == (16, 4, 2) and batch.h.shape == (16, 3) and batch.mask.dtype == bool
    assert replay.update_priorities(batch.key, np.ones(16)) == 16
    path = str(tmp_path / "sequences.npz")
    replay.save(path)
    restored = make_sequence_replay()
    restored.load(path)
    assert np.array_equal(restored.storage.arrays["obs"], arrays["obs"]) and len(restored) == 4
    replay.close()
    restored.close()


# ---- stress: 3 spawned writers and a sampling learner --------------------------------------------

EPISODE_FRAMES = 13  # frames per episode of the stress writers: 12 transitions each


def stress_writer(handle, writer_id: int, stop, started) -> None:
    """Writes transitions whose every field encodes (writer, step): a mixed-up item cannot pass."""
    replay = TransitionReplay.attach(handle)
    writer = TransitionWriter(replay, block_size=16)
    started.release()
    step = 0
    while not stop.is_set():
        frame_step = writer.add_frame(np.array([writer_id, step]), episode_start=step % EPISODE_FRAMES == 0)
        assert frame_step == step
        if step % EPISODE_FRAMES != 0:
            code = writer_id * 1_000_000 + step - 1
            writer.add(step - 1, code, float(code), 0.5, step, priority=1.0 + step % 7)
        step += 1
    writer.flush()
    replay.close()


def check_batch(batch) -> None:
    writer_id, step = batch.action // 1_000_000, batch.action % 1_000_000
    assert np.all((writer_id >= 0) & (writer_id < 3)), "sentinel or garbage action"
    assert np.array_equal(batch.reward, batch.action.astype(np.float32)), "reward from another item"
    assert np.all(batch.discount == 0.5), "sentinel discount"
    assert np.array_equal(batch.obs[:, 1], np.stack([writer_id, step], axis=1)), "obs frame from another item"
    assert np.array_equal(batch.next_obs[:, 1], np.stack([writer_id, step + 1], axis=1)), "next frame"
    previous = np.where(step % EPISODE_FRAMES == 0, step, step - 1)  # reset padding at episode starts
    assert np.array_equal(batch.obs[:, 0], np.stack([writer_id, previous], axis=1)), "stack leaks"
    assert np.array_equal(batch.next_obs[:, 0], np.stack([writer_id, step], axis=1))


def check_tree(replay: TransitionReplay) -> None:
    with replay.storage.lock:
        ring = replay.storage.ring
        leaves = ring.tree.leaves().copy()
        keys = ring.key.copy()
        total, min_priority = ring.tree.total, ring.tree.min_priority
    assert np.all((leaves > 0) == (keys >= 0)), "a live item without priority or a dead one with"
    assert total == pytest.approx(leaves.sum(), rel=1e-12)
    assert min_priority == leaves[leaves > 0].min()


def test_stress_three_writers_and_a_learner():
    # A small ring and a frame ring with little slack, so slots, frames and eviction all wrap many times.
    replay = TransitionReplay.create(
        TransitionReplayConfig(300, frame_shape=(2,), frame_dtype="int64", frame_stack=2, num_frames=340)
    )
    segment = segments_of(replay)
    ctx = mp.get_context("spawn")
    stop, started = ctx.Event(), ctx.Semaphore(0)
    writers = [ctx.Process(target=stress_writer, args=(replay.handle, i, stop, started)) for i in range(3)]
    for proc in writers:
        proc.start()
    for _ in writers:
        assert started.acquire(timeout=60)
    rng = np.random.default_rng(0)
    deadline, num_batches, num_stale = time.monotonic() + 3.0, 0, 0
    while time.monotonic() < deadline:
        if len(replay) == 0:
            continue
        batch = replay.sample(32, 0.5, rng)
        check_batch(batch)
        num_stale += len(batch.key) - replay.update_priorities(batch.key, rng.uniform(0.1, 5.0, 32))
        num_batches += 1
        if num_batches % 50 == 0:
            check_tree(replay)
    stop.set()
    for proc in writers:
        proc.join(30)
    assert [proc.exitcode for proc in writers] == [0, 0, 0]
    check_tree(replay)
    counters = replay.storage.ring.counters
    assert counters[0] > 3 * 300 and num_batches > 100, (counters, num_batches)
    assert len(replay) > 200  # frame eviction may cost a few items, never most of them
    replay.close()
    assert not os.path.exists(segment)


def die_inside_the_lock(handle) -> None:
    """A writer killed half-way through an insert: slots claimed, data half written, nothing published."""
    replay = TransitionReplay.attach(handle)
    with replay.storage.lock:
        slots, _ = replay.storage.ring.claim(4)
        replay.storage.arrays["action"][slots] = 999
        os.kill(os.getpid(), 9)


def test_a_writer_killed_inside_the_lock_hangs_nobody_and_leaves_no_torn_item():
    replay = vector_replay(8)
    try:
        insert_vector_items(replay, [1.0] * 8)  # a full ring: the dead writer's claim overwrites live slots
        child = mp.get_context("spawn").Process(target=die_inside_the_lock, args=(replay.handle,))
        child.start()
        child.join(60)
        assert child.exitcode == -9
        started = time.monotonic()
        batch = replay.sample(64, beta=0.4, rng=np.random.default_rng(0))
        assert time.monotonic() - started < 5.0, "the lock of the dead writer was taken over"
        assert 999 not in batch.action, "no half-written item is sampled"
        ring = replay.storage.ring
        # the 4 slots the dead writer claimed are dropped (key -1, priority 0), the other 4 stay
        assert (ring.key >= 0).sum() == 4 and (ring.tree.leaves() > 0).sum() == 4
        assert ring.tree.total == pytest.approx(4.0)
        # writing goes on, FIFO: keys 12 and 13 replace keys 4 and 5 in slots 4 and 5
        insert_vector_items(replay, [2.0] * 2, first_action=100)
        assert ring.key.tolist() == [-1, -1, -1, -1, 12, 13, 6, 7]
        assert ring.tree.total == pytest.approx(1.0 + 1.0 + 2.0 + 2.0)
    finally:
        replay.close()


# ---- sequences of Atari frames: the frame ring against whole stored stacks ------------------------

def stacked_and_framed(capacity: int, length: int, overlap: int, stack: int, frame: tuple[int, ...], **kwargs):
    """The same sequence replay twice: whole observations per step, and frames stored once."""
    shape = (stack, *frame)
    stacked = SequenceReplayConfig(capacity, shape, 2, length, overlap, **kwargs)
    return SequenceReplay.create(stacked), SequenceReplay.create(replace(stacked, frame_stack=stack))


def feed(writers, obs, t: int, last: bool) -> None:
    for writer in writers:
        state = np.full(2, t, np.float32)
        writer.add_step(obs, t % 3, float(t), 0.0 if last else 0.9, state, -state, (t - 1) % 3, float(t - 1))
        if last:
            writer.end_episode()


def every_item(replay) -> SequenceBatch:
    """Every live item once (equal priorities, a batch as large as the replay), in key order."""
    batch = replay.sample(len(replay), 0.0, np.random.default_rng(0))
    order = np.argsort(batch.key)
    assert np.array_equal(batch.key[order], np.unique(batch.key)), "each item exactly once"
    return SequenceBatch(*(field[order] for field in batch))


def assert_same_batches(stacked, framed) -> None:
    a, b = every_item(stacked), every_item(framed)
    for name, x, y in zip(SequenceBatch._fields, a, b):
        if name != "index":
            assert np.array_equal(x, y), name
    for sentinel in (0xA5,):  # the frame sentinel: no sampled frame is unwritten
        assert not np.any(np.all(b.obs == sentinel, axis=(-2, -1)))


def test_frame_ring_sequences_equal_stored_stacks_across_starts_padding_and_overlaps():
    # Stacks of 3 frames of 2x2, sliding within an episode and reset-padded at its start, as
    # FrameStackObservation builds them. Episodes of 1, 2, 6, 9 and 14 steps with length 5, overlap 2:
    # padding, one-step episodes, sequences that share steps, and frames shared by several inserts.
    rng = np.random.default_rng(3)
    stacked, framed = stacked_and_framed(64, 5, 2, 3, (2, 2))
    writers = [SequenceWriter(stacked, block_size=2), SequenceWriter(framed, block_size=2)]
    t = 0
    for steps in [1, 2, 6, 9, 14, 3]:
        first = rng.integers(0, 200, (2, 2), dtype=np.uint8)
        window = [first] * 3
        for k in range(steps):
            feed(writers, np.stack(window), t, last=k == steps - 1)
            window = window[1:] + [rng.integers(0, 200, (2, 2), dtype=np.uint8)]
            t += 1
    for writer in writers:
        writer.flush()
    assert len(stacked) == len(framed) > 10 and framed.inserted() == stacked.inserted()
    assert_same_batches(stacked, framed)
    frames_used = framed.storage.ring.counters[2]  # FRAMES_INSERTED
    assert frames_used == t + 2 * 6, "each frame once: every step's newest, plus 2 more at each episode start"
    stacked.close()
    framed.close()


def test_frame_ring_sequences_of_a_real_atari_stream_equal_stored_stacks():
    # Pong's real 4-frame stacks, with an episode cut short by a reset (the reset-padded stack of a new
    # episode) and long enough to wrap nothing: the two layouts must serve the same observations.
    from common.envs import make_env

    env = make_env("ALE/Pong-v5", 0, training=True)
    stacked, framed = stacked_and_framed(32, 12, 4, 4, (84, 84))
    writers = [SequenceWriter(stacked, block_size=3), SequenceWriter(framed, block_size=3)]
    obs, _ = env.reset(seed=0)
    rng = np.random.default_rng(0)
    for t in range(70):
        last = t in (29, 69)
        feed(writers, obs, t, last)
        obs = env.reset()[0] if last else env.step(int(rng.integers(env.action_space.n)))[0]
    env.close()
    for writer in writers:
        writer.flush()
    assert len(framed) == len(stacked) == 4 + 5  # 30 steps: sequences from 0, 8, 16, 24; 40 steps: 0, 8, ..., 32
    assert_same_batches(stacked, framed)
    stacked.close()
    framed.close()


def test_frame_ring_sequences_evicted_with_their_frames_never_serve_reused_ones():
    # A ring of 40 frames for 8 sequences of 4 steps (stride 2): frames wrap many times; every sampled
    # step's frame must be the one written for it (frame value == step number).
    replay = SequenceReplay.create(SequenceReplayConfig(8, (1, 1), 2, 4, 2, obs_dtype="int64", frame_stack=1,
                                                        num_frames=40))
    writer = SequenceWriter(replay, block_size=1)
    for t in range(300):
        writer.add_step(np.full((1, 1), t), 0, 0.0, 0.9, np.zeros(2), np.zeros(2))
        if t % 50 == 49:
            writer.end_episode()
    writer.flush()
    batch = replay.sample(64, 0.0, np.random.default_rng(0))
    first = batch.obs[:, 0, 0, 0]
    expected = first[:, None] + np.arange(4)
    assert np.array_equal(np.where(batch.mask, batch.obs[:, :, 0, 0], 0), np.where(batch.mask, expected, 0))
    assert 0 < len(replay) <= 8 and writer.num_dropped == 0
    replay.close()
