"""Users' own image envs and Atari ids as people type them (common/envs.py, common/networks.py).

Every image reaches the networks as [C, H, W], bytes in 0..255 (bool True is 255) or floats as they
are; small images get MinAtar's 3x3 convolution, 84x84 stacks the A3C torso; the replays store what
the env gave and give it back; v4 Atari ids get the same protocol as their v5 id.
"""
import os

import gymnasium as gym
import numpy as np
import pytest
import torch

from a3c.config import make_config as a3c_config
from a3c.train import main as a3c_main
from common.catch import ENV_ID as CATCH, MINI_ENV_ID as MINI_CATCH
from common.envs import is_atari, make_env, observation_kind, observes_frames, stacked_frames
from common.errors import UsageError
from common.networks import ImageTorso
from common.recipe import describe_env
from tests.helpers import children_of

MARK = (2, 5, 1)  # (row, column, channel) of the one lit pixel


class Marked(gym.Env):
    """One lit pixel at MARK (in the env's own layout), moving one column right per step."""

    def __init__(self, shape, dtype, layout="hwc"):
        self.layout, self.dtype, self.t = layout, np.dtype(dtype), 0
        high = 1.0 if self.dtype.kind in "bf" else 255
        self.observation_space = gym.spaces.Box(0, high, shape, self.dtype)
        self.action_space = gym.spaces.Discrete(2)

    def _obs(self):
        obs = np.zeros(self.observation_space.shape, self.dtype)
        row, col, channel = MARK
        value = True if self.dtype == np.bool_ else (0.5 if self.dtype.kind == "f" else 200)
        index = {"hwc": (row, col + self.t, channel), "chw": (channel, row, col + self.t), "hw": (row, col + self.t)}
        obs[index[self.layout]] = value
        return obs

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self._obs(), {}

    def step(self, action):
        self.t += 1
        return self._obs(), 1.0, self.t == 3, False, {}


CASES = {  # id: (shape, dtype, layout, expected [C, H, W], expected dtype, expected value of the lit pixel)
    "asyncrl-test/HwcBool-v0": ((10, 10, 4), "bool", "hwc", (4, 10, 10), np.uint8, 255),
    "asyncrl-test/ChwUint8-v0": ((3, 16, 16), "uint8", "chw", (3, 16, 16), np.uint8, 200),
    "asyncrl-test/HwUint8-v0": ((12, 12), "uint8", "hw", (1, 12, 12), np.uint8, 200),
    "asyncrl-test/HwcFloat-v0": ((8, 9, 3), "float32", "hwc", (3, 8, 9), np.float32, 0.5),
}
for _id, (_shape, _dtype, _layout, *_) in CASES.items():
    if _id not in gym.registry:
        gym.register(_id, entry_point=Marked, kwargs=dict(shape=_shape, dtype=_dtype, layout=_layout))


@pytest.mark.parametrize("env_id", list(CASES))
def test_every_image_layout_and_dtype_arrives_channels_first_at_byte_or_float_scale(env_id):
    _, _, layout, shape, dtype, lit = CASES[env_id]
    env = make_env(env_id, seed=0)
    assert env.observation_space.shape == shape and env.observation_space.dtype == dtype
    obs, _ = env.reset(seed=0)
    obs2, *_ = env.step(0)
    row, col, channel = MARK
    channel = 0 if layout == "hw" else channel
    assert obs.shape == shape and obs.dtype == dtype
    assert obs[channel, row, col] == lit and np.count_nonzero(obs) == 1
    assert obs2[channel, row, col + 1] == lit and np.count_nonzero(obs2) == 1  # width is the last axis
    assert observes_frames(env_id) and stacked_frames(env) is None
    env.close()


def test_a_dict_observation_is_refused_in_one_line():
    if "asyncrl-test/DictObs-v0" not in gym.registry:
        gym.register("asyncrl-test/DictObs-v0", entry_point=lambda: _DictEnv())
    with pytest.raises(UsageError, match="Dict observation space") as err:
        make_env("asyncrl-test/DictObs-v0", seed=0)
    assert "\n" not in str(err.value)


class _DictEnv(gym.Env):
    observation_space = gym.spaces.Dict({"image": gym.spaces.Box(0, 255, (7, 7, 3), np.uint8),
                                         "direction": gym.spaces.Discrete(4)})
    action_space = gym.spaces.Discrete(3)


def test_the_kind_of_observation_picks_the_family_defaults():
    from a3c.config import make_config as a3c_make
    from apex.config import make_config as apex_make
    from r2d2.config import make_config as r2d2_make

    kinds = {env_id: observation_kind(env_id) for env_id in
             ("CartPole-v1", "ALE/Pong-v5", "PongNoFrameskip-v4", CATCH, MINI_CATCH, "asyncrl-test/ChwUint8-v0")}
    assert kinds == {"CartPole-v1": "vector", "ALE/Pong-v5": "frames", "PongNoFrameskip-v4": "frames", CATCH: "frames",
                     MINI_CATCH: "small_image", "asyncrl-test/ChwUint8-v0": "small_image"}  # 16 px < 36
    assert apex_make({"env_id": MINI_CATCH}).learning_starts == 1_000  # the small-task value
    assert apex_make({"env_id": CATCH}).learning_starts == 50_000  # Atari's
    assert a3c_make({"env_id": MINI_CATCH}).optimizer == "adam"  # A3C's image defaults carry to small images
    assert r2d2_make({"env_id": MINI_CATCH}).samples_per_insert == 4.0  # R2D2's small-image replay ratio
    assert r2d2_make({"env_id": "CartPole-v1"}).samples_per_insert == 16.0  # its small-task one


def test_small_images_get_a_3x3_convolution_and_bytes_are_divided_by_255():
    torch.manual_seed(0)
    small, atari = ImageTorso((4, 10, 10), 128), ImageTorso((4, 84, 84), 256)
    assert small.conv1.kernel_size == (3, 3) and small.conv1.stride == (1, 1) and small.conv2 is None
    assert small.fc.in_features == 16 * 8 * 8  # 10 - 3 + 1 = 8 positions a side
    assert atari.conv1.kernel_size == (8, 8) and atari.conv2.stride == (2, 2) and atari.fc.in_features == 32 * 9 * 9
    frames = torch.randint(0, 256, (2, 4, 10, 10), dtype=torch.uint8)
    torch.testing.assert_close(small(frames), small(frames.float() / 255.0))


def test_an_unimportable_env_module_is_one_usage_error_line():
    with pytest.raises(UsageError, match="cannot import module 'nosuchmodule'") as err:
        make_env("nosuchmodule:Foo-v0", seed=0)
    assert "\n" not in str(err.value)


def test_frame_stack_stacks_channels_oldest_first_and_only_grey_stacks_share_frames():
    env = make_env("asyncrl-test/HwUint8-v0", seed=0, frame_stack=3)
    obs, _ = env.reset(seed=0)
    obs2, *_ = env.step(0)
    assert obs.shape == (3, 12, 12) and np.array_equal(obs2[:2], obs[1:])  # shifted by one step
    assert obs2[2, MARK[0], MARK[1] + 1] == 200
    assert stacked_frames(env) == 3
    colour = make_env("asyncrl-test/HwcBool-v0", seed=0, frame_stack=2)
    assert colour.observation_space.shape == (8, 10, 10) and stacked_frames(colour) is None
    assert stacked_frames(make_env(CATCH, seed=0)) == 4 and stacked_frames(make_env("ALE/Pong-v5", seed=0)) == 4


@pytest.mark.parametrize("family", ["apex", "r2d2"])
def test_the_replays_give_back_exactly_the_images_the_env_gave(family):
    """An actor fills its family's replay from MiniCatch (bool grids, stored as bytes, whole); every
    sampled observation is one the env produced, as uint8 [3, 10, 5]."""
    from common.counters import RunCounters
    from common.distributed.params import PublishedParams

    if family == "apex":
        from apex.actor import Actor
        from apex.config import make_config
        from apex.network import QNetwork as make_net
        from apex.train import replay_config
        from common.replay.transition import TransitionReplay as Replay
        cfg = make_config({"env_id": MINI_CATCH, "num_workers": 1, "envs_per_actor": 1, "replay_capacity": 500, "batch_size": 32,
                           "hidden_size": 16, "replay_block_size": 8})
        env = describe_env(MINI_CATCH)
        net = make_net(env.obs_shape, env.num_actions, 16, cfg.dueling)
    else:
        from common.replay.sequence import SequenceReplay as Replay
        from r2d2.actor import Actor
        from r2d2.config import make_config
        from r2d2.network import make_network
        from r2d2.train import replay_config
        cfg = make_config({"env_id": MINI_CATCH, "num_workers": 1, "envs_per_actor": 1, "replay_capacity": 50, "batch_size": 8,
                           "hidden_size": 16, "lstm_size": 8, "sequence_length": 10, "sequence_overlap": 5,
                           "burn_in": 2})
        env = describe_env(MINI_CATCH)
        net = make_network(cfg, env.obs_shape, env.num_actions)
    assert env.obs_shape == (3, 10, 5) and env.obs_dtype == "uint8" and env.stacked_frames is None
    replay = Replay.create(replay_config(cfg, env))
    try:
        actor = Actor(0, cfg, replay, PublishedParams(net), RunCounters(1))
        for _ in range(300):
            actor.step()
        actor.close()
        batch = replay.sample(8, 0.4, np.random.default_rng(0))
        obs = batch.obs if family == "apex" else batch.obs.reshape(-1, *env.obs_shape)[batch.mask.reshape(-1)]
        assert obs.dtype == np.uint8 and obs.shape[-3:] == (3, 10, 5)
        for o in obs:  # a real MiniCatch grid: one paddle in the bottom row, one ball, values 0 or 255
            assert set(np.unique(o)) <= {0, 255} and o[0].sum() == 255 and o[0, -1].sum() == 255
            assert o[1].sum() == 255
    finally:
        replay.close()


@pytest.mark.parametrize("v4", ["PongNoFrameskip-v4", "Pong-v4", "PongNoFrameskip-v0"])
def test_v4_atari_ids_get_the_protocol_of_their_v5_id(v4):
    """The older ids' own frame skip (1, or 2-5 at random) and sticky actions (v0: 0.25) must not stack on
    the protocol's: the same seed gives the same wrappers and observations as ALE/Pong-v5 step for step."""
    assert is_atari(v4) and observes_frames(v4) and not is_atari("CartPole-v1")
    envs = [make_env(env_id, seed=5) for env_id in (v4, "ALE/Pong-v5")]
    chains = []
    for env in envs:
        chain, inner = [], env
        while isinstance(inner, gym.Wrapper):
            chain.append(type(inner).__name__)
            inner = inner.env
        chains.append(chain)
        assert inner.unwrapped._frameskip == 1 and inner.unwrapped.ale.getFloat("repeat_action_probability") == 0
    assert chains[0] == chains[1]
    first = [env.reset(seed=5)[0] for env in envs]
    assert np.array_equal(*first)
    rng = np.random.default_rng(0)
    for _ in range(60):
        action = int(rng.integers(6))
        steps = [env.step(action) for env in envs]
        assert np.array_equal(steps[0][0], steps[1][0]) and steps[0][1:3] == steps[1][1:3]
    for env in envs:
        env.close()


def test_a3c_learns_minicatch_from_a_small_bool_image_with_the_small_image_defaults(tmp_path):
    """MiniCatch (common/catch.py) is a 10x5x3 bool grid, channels last, through the small-image torso.
    0.9 is 19 catches in 20 greedy games; random play scores about -0.6. A torso that reads the grid as
    channels first (ignoring its layout) stayed below 0.35 for 60 s."""
    cfg = a3c_config({"env_id": MINI_CATCH, "stop_return": 0.9, "max_seconds": 120.0, "eval_interval_seconds": 2.0,
                      "eval_episodes": 20, "run_dir": str(tmp_path)})
    assert (cfg.weight_init, cfg.optimizer, cfg.lr, cfg.t_max) == ("orthogonal", "adam", 5e-4, 20)
    summary = a3c_main(cfg)
    assert summary.best_eval >= 0.9, f"evaluations {summary.eval_means}"
    assert not children_of(os.getpid()) or all("resource_tracker" in cmd for _, cmd in children_of(os.getpid()))


def test_q1_learns_minicatch_with_the_small_image_defaults(tmp_path):
    """The async Q methods take MinAtar's DQN's schedules and Adam on small images. Q-learning learns its
    greedy policy off-policy, from play of any epsilon: this checks learning through the small-image torso
    with them; that they beat the paper's Atari schedules is the defaults sweep's finding, on MinAtar."""
    cfg = a3c_config({"algo": "q1", "env_id": MINI_CATCH, "stop_return": 0.9, "max_seconds": 120.0,
                      "eval_interval_seconds": 2.0, "eval_episodes": 20, "run_dir": str(tmp_path)})
    assert (cfg.eps_anneal_frames, cfg.target_update_frames, cfg.optimizer, cfg.lr) == (100_000, 1_000, "adam", 1e-4)
    summary = a3c_main(cfg)
    assert summary.best_eval >= 0.9, f"evaluations {summary.eval_means}"


def test_minatar_games_arrive_as_byte_images():
    pytest.importorskip("minatar")
    env = make_env("MinAtar/Breakout-v1", seed=0)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (4, 10, 10) and obs.dtype == np.uint8 and set(np.unique(obs)) <= {0, 255}
    assert env.action_space.n == 3 and observes_frames("MinAtar/Breakout-v1")
    env.close()


@pytest.mark.parametrize("family", ["apex", "r2d2"])
def test_the_replay_families_learn_minicatch_with_their_small_image_defaults(family, tmp_path):
    """Small images take the replay families' small-task defaults (the Atari ones wait for 50,000
    transitions before the first update)."""
    module = __import__(f"{family}.train", fromlist=["main"])
    config = __import__(f"{family}.config", fromlist=["make_config", "VECTOR_DEFAULTS"])
    cfg = config.make_config({"env_id": MINI_CATCH, "stop_return": 0.9, "max_seconds": 120.0,
                              "eval_interval_seconds": 2.0, "eval_episodes": 20, "run_dir": str(tmp_path)})
    assert cfg.learning_starts == config.VECTOR_DEFAULTS["learning_starts"]
    summary = module.main(cfg)
    assert summary.best_eval >= 0.9, f"evaluations {summary.eval_means}"
