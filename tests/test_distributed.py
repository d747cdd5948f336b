"""The replay family's runtime: its two seams, each passed by the shared-memory implementation and by
a second, in-process one (the contract is what these tests state), and its hand-computed parts
(epsilon ladder, published parameters, rate limit)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from apex.network import QNetwork
from common.distributed.actor_loop import epsilon_ladder
from common.distributed.learner_loop import RateLimit
from common.distributed.params import PublishedParams
from common.distributed.seams import ParameterChannel, ReplayClient
from common.replay.base import Inserted
from common.replay.transition import TransitionBatch, TransitionBlock, TransitionReplay, TransitionReplayConfig


class ListReplay:
    """A second ReplayClient of transitions (vector observations, no frame stacks): dicts in one
    process, exact proportional sampling instead of a sum-tree."""

    def __init__(self, capacity: int, alpha: float):
        self.capacity, self.alpha = capacity, alpha
        self.config = TransitionReplayConfig(capacity, frame_shape=(2,), frame_dtype="float32", alpha=alpha)
        self.frames: dict[int, np.ndarray] = {}
        self.items: dict[int, tuple[int, int, int, float, float]] = {}  # key -> obs id, next id, a, r, discount
        self.priority: dict[int, float] = {}
        self.max_priority = 1.0
        self.num_items = self.num_frames = 0

    def insert(self, block: TransitionBlock) -> Inserted:
        new_ids = list(range(self.num_frames, self.num_frames + len(block.frames)))
        self.frames.update(zip(new_ids, np.asarray(block.frames)))
        self.num_frames += len(new_ids)
        ids = [int(i) for i in block.history_ids] + new_ids
        keys = []
        for m in range(len(block.action)):
            key, self.num_items = self.num_items, self.num_items + 1
            self.items[key] = (ids[int(np.ravel(block.obs_ref[m])[0])], ids[int(np.ravel(block.next_ref[m])[0])],
                               int(block.action[m]), float(block.reward[m]), float(block.discount[m]))
            self.priority[key] = self.max_priority if block.priority is None else float(block.priority[m])
            self.max_priority = max(self.max_priority, self.priority[key])
            keys.append(key)
        for key in [k for k in self.items if k < self.num_items - self.capacity]:
            del self.items[key], self.priority[key]
        return Inserted(np.array(keys, np.int64), np.array(new_ids, np.int64))

    def sample(self, batch_size: int, beta: float, rng: np.random.Generator) -> TransitionBatch:
        keys = np.array(sorted(self.items), np.int64)
        p = np.array([self.priority[k] for k in keys]) ** self.alpha
        chosen = rng.choice(len(keys), batch_size, p=p / p.sum())
        rows = [self.items[k] for k in keys[chosen]]
        frames = lambda column: np.stack([self.frames[row[column]] for row in rows])  # noqa: E731
        return TransitionBatch(frames(0), np.array([r[2] for r in rows]), np.array([r[3] for r in rows], np.float32),
                               np.array([r[4] for r in rows], np.float32), frames(1), chosen, keys[chosen],
                               ((p[chosen] / p.min()) ** -beta).astype(np.float32))

    def update_priorities(self, keys: np.ndarray, priorities: np.ndarray) -> int:
        live = [(int(k), float(p)) for k, p in zip(keys, priorities) if int(k) in self.items]
        for key, priority in live:
            self.priority[key] = priority
            self.max_priority = max(self.max_priority, priority)
        return len(live)

    def inserted(self) -> int:
        return self.num_items

    def __len__(self) -> int:
        return len(self.items)


class InProcessParams:
    """A second ParameterChannel: a state dict in this process and a counter."""

    def __init__(self, model: torch.nn.Module):
        self.state = {name: value.detach().clone() for name, value in model.state_dict().items()}
        self.version = 0

    def publish(self, model: torch.nn.Module) -> int:
        self.state = {name: value.detach().clone() for name, value in model.state_dict().items()}
        self.version += 1
        return self.version

    def poll(self, into: torch.nn.Module, have_version: int) -> int:
        if have_version != self.version:
            into.load_state_dict(self.state)
        return self.version


def shm_replay(capacity: int, alpha: float) -> TransitionReplay:
    return TransitionReplay.create(TransitionReplayConfig(capacity, frame_shape=(2,), frame_dtype="float32",
                                                          alpha=alpha))


@pytest.fixture(params=["shared memory", "in process"])
def make_replay(request):
    made: list = []

    def make(capacity: int, alpha: float) -> ReplayClient[TransitionBlock, TransitionBatch]:
        made.append(shm_replay(capacity, alpha) if request.param == "shared memory" else ListReplay(capacity, alpha))
        return made[-1]

    yield make
    for replay in made:
        if hasattr(replay, "close"):
            replay.close()


def vector_block(priorities, first_action: int = 0, count: int = 0) -> TransitionBlock:
    """Item k: obs [first_action + k, 0], next_obs [first_action + k, 1], action first_action + k;
    priorities None: `count` items at the running max priority."""
    count = count if priorities is None else len(priorities)
    actions = first_action + np.arange(count)
    frames = np.stack([[[a, 0.0], [a, 1.0]] for a in actions]).reshape(2 * count, 2).astype(np.float32)
    refs = np.arange(2 * count).reshape(count, 2)
    return TransitionBlock(frames, [], refs[:, :1], refs[:, 1:], actions, np.ones(count), np.full(count, 0.99),
                           None if priorities is None else np.asarray(priorities, np.float64))


def test_replay_client_counts_keys_and_drops_updates_of_evicted_items(make_replay):
    replay = make_replay(4, 1.0)
    assert len(replay) == 0 and replay.inserted() == 0
    assert replay.insert(vector_block([1.0, 2.0, 3.0])).keys.tolist() == [0, 1, 2]
    assert len(replay) == 3 and replay.inserted() == 3
    assert replay.insert(vector_block([1.0, 1.0, 1.0], first_action=3)).keys.tolist() == [3, 4, 5]
    assert len(replay) == 4 and replay.inserted() == 6, "capacity 4: the two oldest are gone"
    assert replay.update_priorities(np.array([0, 1, 5]), np.array([9.0, 9.0, 9.0])) == 1, "keys 0, 1: evicted"


def test_replay_client_samples_by_priority_with_importance_weights(make_replay):
    # alpha 1, priorities 1, 2, 4, 8, beta 1: weight_i = (p_i / p_min)^-1 = 1, 0.5, 0.25, 0.125.
    replay = make_replay(4, 1.0)
    keys = replay.insert(vector_block([1.0, 2.0, 4.0, 8.0])).keys
    rng = np.random.default_rng(0)
    batch = replay.sample(64, 1.0, rng)
    assert np.allclose(batch.weight, np.array([1, 0.5, 0.25, 0.125])[batch.action], rtol=1e-6)
    assert np.array_equal(batch.obs[:, 0], batch.action.astype(np.float32)) and np.all(batch.next_obs[:, 1] == 1)
    assert np.array_equal(batch.key, keys[batch.action])
    # item 0 to priority 8: p = 8, 2, 4, 8, p_min 2: weights 0.25, 1, 0.5, 0.25; it is drawn most often.
    assert replay.update_priorities(keys[:1], np.array([8.0])) == 1
    counts = np.zeros(4)
    for _ in range(50):
        batch = replay.sample(64, 1.0, rng)
        assert np.allclose(batch.weight, np.array([0.25, 1, 0.5, 0.25])[batch.action], rtol=1e-6)
        counts += np.bincount(batch.action, minlength=4)
    assert counts[0] > 2 * counts[1] and counts[3] > 2 * counts[1]


def test_replay_client_gives_new_items_the_running_max_priority(make_replay):
    replay = make_replay(4, 1.0)
    replay.insert(vector_block([1.0, 6.0]))
    replay.insert(vector_block(None, first_action=2, count=2))  # priority None: the max so far, 6
    batch = replay.sample(64, 1.0, np.random.default_rng(1))
    assert np.allclose(batch.weight, np.array([1, 1 / 6, 1 / 6, 1 / 6])[batch.action], rtol=1e-6)


@pytest.mark.parametrize("make_channel", [PublishedParams, InProcessParams], ids=["shared memory", "in process"])
def test_parameter_channel_publishes_versions_that_readers_poll(make_channel):
    torch.manual_seed(0)
    learner_net, actor_net = QNetwork((4,), 2, 8, False), QNetwork((4,), 2, 8, False)
    channel: ParameterChannel = make_channel(learner_net)
    first = channel.poll(actor_net, -1)
    assert torch.equal(actor_net.head.weight, learner_net.head.weight), "a new reader gets the parameters"
    with torch.no_grad():
        learner_net.head.weight += 1.0
    assert channel.poll(actor_net, first) == first, "nothing new published"
    assert not torch.equal(actor_net.head.weight, learner_net.head.weight)
    second = channel.publish(learner_net)
    assert second > first
    with torch.no_grad():
        actor_net.head.weight.zero_()
    assert channel.poll(actor_net, second) == second and not actor_net.head.weight.any(), "held: no copy"
    assert channel.poll(actor_net, first) == second and torch.equal(actor_net.head.weight, learner_net.head.weight)
    assert channel.publish(learner_net) > second


def test_epsilon_ladder_by_hand():
    # N = 8: 7 i / (N - 1) = i, so epsilon_i = 0.4^(1 + i): 0.4, 0.16, 0.064, ..., 0.4^8 = 0.00065536.
    assert epsilon_ladder(8).tolist() == pytest.approx([0.4 ** (1 + i) for i in range(8)])
    assert epsilon_ladder(8)[-1] == pytest.approx(0.00065536)
    # N = 3: exponents 1, 4.5, 8.
    assert epsilon_ladder(3).tolist() == pytest.approx([0.4, 0.4 ** 4.5, 0.4 ** 8])
    assert epsilon_ladder(1).tolist() == [0.4]


def test_published_params_are_versioned():
    learner_net, actor_net = QNetwork((4,), 2, 8, False), QNetwork((4,), 2, 8, False)
    params = PublishedParams(learner_net)
    version = params.poll(actor_net, -1)
    assert version == 0 and torch.equal(actor_net.head.weight, learner_net.head.weight)
    with torch.no_grad():
        learner_net.head.weight += 1.0
    assert params.poll(actor_net, version) == 0, "nothing new published: no copy"
    assert not torch.equal(actor_net.head.weight, learner_net.head.weight)
    params.publish(learner_net)
    assert params.poll(actor_net, version) == 2 and torch.equal(actor_net.head.weight, learner_net.head.weight)
    params.version += 1  # a publication under way: readers keep what they have
    assert params.poll(actor_net, 2) == 2


def test_rate_limit_by_hand():
    # 2 samples per insert, batch 4, slack 32 * 4 = 128 samples. Learning starts at 1000 inserted, 0 updates.
    limit = torch.full((1,), -1, dtype=torch.int64)
    rate = RateLimit(2.0, 4, limit)
    rate.begin(1000, 0)
    rate.publish(0)
    assert limit.item() == 1000 + 128 // 2, "actors may run 64 inserts ahead"
    # The 33rd update would have sampled 132 > 2 * 0 + 128: wait; 2 more inserts allow it.
    assert rate.may_update(1000, 31) and not rate.may_update(1000, 32) and rate.may_update(1002, 32)
    rate.publish(10)
    assert limit.item() == 1000 + (40 + 128) // 2
    assert RateLimit(0.0, 4).may_update(0, 10 ** 9), "ratio 0: no limit"
