"""Environment construction: the DQN Atari protocol for ALE ids, channels-first images for other image
envs, plain float vectors for the rest.

ALE ids (`ALE/Pong-v5`, and the older ids most papers' code uses: `PongNoFrameskip-v4`, `Pong-v4`,
`Pong-v0`; each is built with frame skip 1 and no sticky actions of its own, so the protocol's skip is
the only one) get (Mnih et al. 2015; Machado et al. 2018 for sticky actions), built from gymnasium's own
wrappers where they exist:
  up to 30 no-op starts, action repeat 4 with a max over the last two frames, 84x84 grayscale
  (AtariPreprocessing), FIRE on reset where the game needs it, loss of life as terminal and reward
  clipping for training only, a 4-frame stack (FrameStackObservation), a 108,000-frame cap
  (ALE's max_num_frames_per_episode), sticky actions off unless asked for.
Logged returns are the raw game score of full games: RecordEpisodeStatistics sits below the
life-loss and clipping wrappers, so `info["episode"]["r"]` appears only at a real game over.

Any other env whose observation is an image (a Box of 3 dimensions, or of 2 with an integer or bool
dtype: MinAtar's 10x10xC grids, Procgen's 64x64x3, MiniGrid's image wrapper, common.catch) gives
[C, H, W] channels first: H x W x C is transposed (an image is channels first only when it has fewer
leading than trailing entries, gymnasium's H x W x C otherwise); bool and uint8 become uint8 in 0..255
(one byte per pixel in the replays), floats float32. `frame_stack` k > 1 stacks the last k observations
along the channels. MinAtar ids (`MinAtar/Breakout-v1`) are registered when the minatar package is
installed (`pip install -e ".[minatar]"`).
"""
from __future__ import annotations

import functools
from typing import Literal

import gymnasium as gym
import numpy as np
from gymnasium.wrappers import (AtariPreprocessing, ClipReward, FlattenObservation,
                                FrameStackObservation, RecordEpisodeStatistics, TransformObservation)

from common.errors import UsageError

ATARI_FRAMES_PER_EPISODE = 108_000
ATARI_FRAME_SKIP = 4
ATARI_STACK = 4
ATARI_ENTRY_POINT = "ale_py.env:AtariEnv"


@functools.cache
def _register_ale() -> None:
    import ale_py

    gym.register_envs(ale_py)


def is_atari(env_id: str) -> bool:
    """ALE/... ids and every other id of ale_py's AtariEnv (PongNoFrameskip-v4, Pong-v4, Pong-v0, ...)."""
    if env_id.startswith("ALE/"):
        return True
    if ":" in env_id or not env_id.endswith(("-v4", "-v0")):  # a user's module:Id, or no id of ale_py's
        return False
    _register_ale()
    spec = gym.registry.get(env_id)
    return spec is not None and spec.entry_point == ATARI_ENTRY_POINT


def register_env_family(env_id: str) -> None:
    """Registers MinAtar's ids, which its package defines but does not register on import."""
    if env_id.startswith("MinAtar/") and env_id not in gym.registry:
        try:
            import minatar.gym
        except ImportError:
            raise UsageError(f"{env_id} needs the minatar package: pip install -e \".[minatar]\"") from None
        minatar.gym.register_envs()


SMALL_IMAGE_SIDE = 36
"""Images with a side below this many pixels are small (MinAtar's 10x10): an 8x8/4 convolution would
see two positions of them, so they get a small torso and defaults of their own."""

ObservationKind = Literal["vector", "small_image", "frames"]


def observation_kind(env_id: str) -> ObservationKind:
    """What env_id's agent sees, which decides the family defaults: "frames" (ALE ids and images of
    SMALL_IMAGE_SIDE pixels a side or more, such as common.catch), "small_image" (MinAtar's grids,
    common.catch's MiniCatch) or "vector" (also for an id that does not build: make_env then says why)."""
    if is_atari(env_id):
        return "frames"
    try:
        register_env_family(env_id)
        env = gym.make(env_id)
    except Exception:  # noqa: BLE001 - any failure here is reported by make_env with its reason
        return "vector"
    try:
        space = env.observation_space
        if not is_image(space):
            return "vector"
        shape = space.shape if len(space.shape) == 2 else (space.shape[1:] if is_channels_first(space.shape)
                                                            else space.shape[:2])
        return "frames" if min(shape) >= SMALL_IMAGE_SIDE else "small_image"
    finally:
        env.close()


def observes_frames(env_id: str) -> bool:
    """Whether env_id's agent sees images of any size."""
    return observation_kind(env_id) != "vector"


def frames_per_step(env_id: str) -> int:
    """Emulator frames per agent step: the unit of the 'frames' counters."""
    return ATARI_FRAME_SKIP if is_atari(env_id) else 1


class EpisodicLife(gym.Wrapper):
    """Loss of a life is terminal for the learner; the game itself runs on until game over.

    `reset` after a life loss only takes a no-op step, so the agent sees each life as an episode
    while the emulator (and the episode statistics below this wrapper) see whole games.
    """

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self._lives = 0
        self._game_over = True

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._game_over = terminated or truncated
        lives = self.env.unwrapped.ale.lives()
        if 0 < lives < self._lives:
            terminated = True
        self._lives = lives
        return obs, reward, terminated, truncated, info

    def reset(self, **kwargs):
        if self._game_over:
            obs, info = self.env.reset(**kwargs)
        else:
            obs, _, terminated, truncated, info = self.env.step(0)
            if terminated or truncated:
                obs, info = self.env.reset(**kwargs)
        self._lives = self.env.unwrapped.ale.lives()
        return obs, info


class FireReset(gym.Wrapper):
    """Presses FIRE after every reset, for games that stand still until it is pressed."""

    def reset(self, **kwargs):
        self.env.reset(**kwargs)
        for action in (1, 2):
            obs, _, terminated, truncated, info = self.env.step(action)
            if terminated or truncated:
                obs, info = self.env.reset(**kwargs)
        return obs, info


class ScreenShape(gym.Wrapper):
    """Declares the grayscale screen's space over an env built with obs_type="ram".

    AtariPreprocessing sizes its two frame buffers from the space below it and reads the screens it
    needs from the emulator itself; the observation the base env makes of every emulated frame goes
    unread: as the 128-byte RAM rather than a 33 KB grayscale copy, a Pong agent step took 295 us instead
    of 340 (the stack up to AtariPreprocessing, 2,000 random steps). The frames are the same
    (tests/test_envs.py).
    """

    def __init__(self, env: gym.Env):
        super().__init__(env)
        height, width = env.unwrapped.ale.getScreenDims()
        self.observation_space = gym.spaces.Box(0, 255, (height, width), np.uint8)


def _needs_fire(env: gym.Env) -> bool:
    meanings = env.unwrapped.get_action_meanings()
    return len(meanings) >= 3 and meanings[1] == "FIRE"


def _make_atari(env_id: str, training: bool, sticky_actions: bool, render_mode: str | None) -> gym.Env:
    _register_ale()
    # These keywords replace the id's own, so that no frame skip (a v4 id's 1 or 2-5, a v5 id's 4) and no
    # sticky actions (v0's and v5's 0.25) stack on the protocol's.
    env = gym.make(env_id, frameskip=1, repeat_action_probability=0.25 if sticky_actions else 0.0,
                   max_num_frames_per_episode=ATARI_FRAMES_PER_EPISODE, obs_type="ram", render_mode=render_mode)
    env = ScreenShape(env)
    env = AtariPreprocessing(env, noop_max=30, frame_skip=ATARI_FRAME_SKIP, screen_size=84,
                             terminal_on_life_loss=False, grayscale_obs=True)
    env = RecordEpisodeStatistics(env)
    if training:
        env = EpisodicLife(env)
    if _needs_fire(env):
        env = FireReset(env)
    if training:
        env = ClipReward(env, -1.0, 1.0)
    return FrameStackObservation(env, ATARI_STACK)


def is_image(space: gym.Space) -> bool:
    """A Box of 3 dimensions, or of 2 with an integer or bool dtype (one grey channel)."""
    if not isinstance(space, gym.spaces.Box):
        return False
    integral = space.dtype == np.bool_ or np.issubdtype(space.dtype, np.integer)
    return len(space.shape) == 3 or (len(space.shape) == 2 and integral)


def is_channels_first(shape: tuple[int, ...]) -> bool:
    """[C, H, W] when the first dimension is the smaller end (4x84x84, 3x64x64); gymnasium's images are
    H x W x C otherwise (10x10x4, 64x64x3, and the ambiguous 10x10x10)."""
    return shape[0] < shape[2]


class ImageObservation(gym.ObservationWrapper):
    """Any image observation as [C, H, W]: uint8 in 0..255 for bool and integer images (bool True is 255),
    float32 for float ones, so the torsos divide bytes by 255 and take floats as they are."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        space = env.observation_space
        shape = space.shape if len(space.shape) == 3 else (1, *space.shape)
        self._transpose = len(space.shape) == 3 and not is_channels_first(space.shape)
        if self._transpose:
            shape = (shape[2], shape[0], shape[1])
        self._scale = None
        if np.issubdtype(space.dtype, np.integer):
            high = float(np.max(space.high))
            self._scale = 255 / high if 0 < high < 255 else None  # a grid of small codes fills the byte
        floating = np.issubdtype(space.dtype, np.floating)
        self.observation_space = (gym.spaces.Box(-np.inf, np.inf, shape, np.float32) if floating
                                  else gym.spaces.Box(0, 255, shape, np.uint8))

    def observation(self, obs):
        obs = np.asarray(obs)
        if obs.ndim == 2:
            obs = obs[None]
        elif self._transpose:
            obs = obs.transpose(2, 0, 1)
        if self.observation_space.dtype == np.float32:
            return np.ascontiguousarray(obs, dtype=np.float32)
        if obs.dtype == np.bool_:  # 0/1 bytes times 255, without a float pass
            return np.ascontiguousarray(obs).view(np.uint8) * np.uint8(255)
        if self._scale is not None:
            return np.ascontiguousarray(obs.astype(np.float32) * self._scale, dtype=np.uint8)
        return np.ascontiguousarray(np.clip(obs, 0, 255), dtype=np.uint8)


class StackChannels(gym.ObservationWrapper):
    """The last k observations [C, H, W] (or [D]) as one [k * C, H, W] (or [k * D]), oldest first."""

    def __init__(self, env: gym.Env, k: int):
        stacked = FrameStackObservation(env, k)
        super().__init__(stacked)
        space = stacked.observation_space
        shape = (space.shape[0] * space.shape[1], *space.shape[2:])
        self.observation_space = gym.spaces.Box(space.low.reshape(shape), space.high.reshape(shape), shape,
                                                space.dtype)

    def observation(self, obs):
        return np.asarray(obs).reshape(self.observation_space.shape)


def stacked_frames(env: gym.Env) -> int | None:
    """k when each observation [k, H, W] is the last k one-channel frames, each step shifting them by one
    (the Atari protocol, Catch, --frame-stack over a grey image: gymnasium's FrameStackObservation over
    [H, W] or [1, H, W] frames), so that replays may store each frame once; None otherwise."""
    while isinstance(env, gym.Wrapper):
        if isinstance(env, FrameStackObservation):
            inner = env.env.observation_space.shape
            return env.stack_size if len(inner) == 2 or (len(inner) == 3 and inner[0] == 1) else None
        env = env.env
    return None


def _make_other(env_id: str, frame_stack: int, render_mode: str | None) -> gym.Env:
    register_env_family(env_id)
    # render_mode only when asked for: an env that cannot render (common.catch) takes no such argument
    env = gym.make(env_id, **({"render_mode": render_mode} if render_mode else {}))
    space = env.observation_space
    if isinstance(space, (gym.spaces.Dict, gym.spaces.Tuple)):
        env.close()
        raise UsageError(f"env {env_id!r} has a {type(space).__name__} observation space; asyncrl takes one "
                         f"image or vector: register it with a wrapper that keeps one (its image wrapper, or "
                         f"gymnasium's FlattenObservation)")
    if is_image(space):
        env = ImageObservation(env)
    else:
        if not isinstance(space, gym.spaces.Box):
            env = FlattenObservation(env)
        size = int(np.prod(env.observation_space.shape))
        env = TransformObservation(env, lambda o: np.asarray(o, dtype=np.float32).reshape(-1),
                                   gym.spaces.Box(-np.inf, np.inf, (size,), np.float32))
    if frame_stack > 1:
        env = StackChannels(env, frame_stack)
    return RecordEpisodeStatistics(env)


def make_env(env_id: str, seed: int, training: bool = True, sticky_actions: bool = False,
             frame_stack: int = 1, render_mode: str | None = None) -> gym.Env:
    """Builds env_id with the protocol above; raises UsageError for ids we cannot run.

    frame_stack: observations stacked along the channels for non-Atari envs (ALE ids always stack 4).
    The action space is seeded here; the caller seeds the env with its first `reset(seed=seed)`.
    `render_mode` goes to gym.make ("rgb_array" for recording a video).
    """
    try:
        env = (_make_atari(env_id, training, sticky_actions, render_mode) if is_atari(env_id)
               else _make_other(env_id, frame_stack, render_mode))
    except gym.error.Error as err:
        raise UsageError(f"unknown or unusable env id {env_id!r} ({err})") from None
    except ImportError as err:  # gymnasium imports the module of a module:Id id
        raise UsageError(f"env id {env_id!r}: cannot import module {env_id.split(':')[0]!r} "
                         f"({type(err).__name__})") from None
    if not isinstance(env.action_space, gym.spaces.Discrete):
        env.close()
        raise UsageError(f"env {env_id!r} has action space {env.action_space}; asyncrl needs a discrete one")
    env.action_space.seed(seed)
    return env


def episode_return(info: dict) -> float | None:
    """The raw return of a game that just ended, or None."""
    episode = info.get("episode")
    return None if episode is None else float(np.asarray(episode["r"]))


class LastReward(gym.Wrapper):
    """Remembers the reward of the latest step, which the recurrent policy takes as an input; on Atari
    clipped to [-1, 1] as the training envs give it (evaluation envs give the raw score)."""

    def __init__(self, env: gym.Env, clip: bool):
        super().__init__(env)
        self.clip = clip
        self.last_reward = 0.0

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.last_reward = float(np.clip(reward, -1.0, 1.0)) if self.clip else float(reward)
        return obs, reward, terminated, truncated, info
