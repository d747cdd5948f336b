"""Environment construction: the DQN Atari protocol for ALE ids, plain float vectors for the rest.

ALE ids get (Mnih et al. 2015; Machado et al. 2018 for sticky actions), built from gymnasium's own
wrappers where they exist:
  up to 30 no-op starts, action repeat 4 with a max over the last two frames, 84x84 grayscale
  (AtariPreprocessing), FIRE on reset where the game needs it, loss of life as terminal and reward
  clipping for training only, a 4-frame stack (FrameStackObservation), a 108,000-frame cap
  (ALE's max_num_frames_per_episode), sticky actions off unless asked for.
Logged returns are the raw game score of full games: RecordEpisodeStatistics sits below the
life-loss and clipping wrappers, so `info["episode"]["r"]` appears only at a real game over.
"""
from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium.wrappers import (AtariPreprocessing, ClipReward, FlattenObservation,
                                FrameStackObservation, RecordEpisodeStatistics, TransformObservation)

from common.errors import UsageError

ATARI_FRAMES_PER_EPISODE = 108_000
ATARI_FRAME_SKIP = 4
ATARI_STACK = 4


def is_atari(env_id: str) -> bool:
    return env_id.startswith("ALE/")


def observes_frames(env_id: str) -> bool:
    """Whether env_id's agent sees stacked 84x84 frames (ALE ids, and image envs such as common.catch),
    which decides the family defaults; False for an id that does not build (make_env then says why)."""
    if is_atari(env_id):
        return True
    try:
        env = gym.make(env_id)
    except Exception:  # noqa: BLE001 - any failure here is reported by make_env with its reason
        return False
    try:
        return is_frame_stack(env.observation_space)
    finally:
        env.close()


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
    import ale_py  # registers the ALE ids with gymnasium

    gym.register_envs(ale_py)
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


def is_frame_stack(space: gym.Space) -> bool:
    """A uint8 stack of 84x84 frames, channels first: what the Atari protocol gives and AtariTorso takes."""
    return (isinstance(space, gym.spaces.Box) and space.dtype == np.uint8 and len(space.shape) == 3
            and space.shape[1:] == (84, 84))


def _make_vector(env_id: str, render_mode: str | None) -> gym.Env:
    # render_mode only when asked for: an env that cannot render (common.catch) takes no such argument
    env = gym.make(env_id, **({"render_mode": render_mode} if render_mode else {}))
    if is_frame_stack(env.observation_space):  # kept as frames for the convolutional torso
        return RecordEpisodeStatistics(env)
    if not isinstance(env.observation_space, gym.spaces.Box):
        env = FlattenObservation(env)
    space = env.observation_space
    env = TransformObservation(env, lambda o: np.asarray(o, dtype=np.float32).reshape(-1),
                               gym.spaces.Box(-np.inf, np.inf, (int(np.prod(space.shape)),), np.float32))
    return RecordEpisodeStatistics(env)


def make_env(env_id: str, seed: int, training: bool = True, sticky_actions: bool = False,
             render_mode: str | None = None) -> gym.Env:
    """Builds env_id with the protocol above; raises UsageError for ids we cannot run.

    The action space is seeded here; the caller seeds the env with its first `reset(seed=seed)`.
    `render_mode` goes to gym.make ("rgb_array" for recording a video).
    """
    try:
        env = (_make_atari(env_id, training, sticky_actions, render_mode) if is_atari(env_id)
               else _make_vector(env_id, render_mode))
    except gym.error.Error as err:
        raise UsageError(f"unknown or unusable env id {env_id!r} ({err})") from None
    if not isinstance(env.action_space, gym.spaces.Discrete):
        env.close()
        raise UsageError(f"env {env_id!r} has action space {env.action_space}; asyncrl needs a discrete one")
    env.action_space.seed(seed)
    return env


def episode_return(info: dict) -> float | None:
    """The raw return of a game that just ended, or None."""
    episode = info.get("episode")
    return None if episode is None else float(np.asarray(episode["r"]))
