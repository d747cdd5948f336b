"""Recording an episode as an .mp4: one frame per agent step, written with OpenCV.

OpenCV's VideoWriter with the "mp4v" codec rather than imageio: opencv-python is a dependency
already, and imageio's ffmpeg wheel would add 68 MB.
"""
from __future__ import annotations

import colorsys
import math
from pathlib import Path
from typing import Any

import cv2
import gymnasium as gym
import numpy as np

from common.envs import is_image, make_env, stacked_frames
from common.errors import UsageError

MIN_VIDEO_PIXELS = 160
"""Shorter screens are scaled up by a whole factor to at least this many pixels (84 -> 168), so that
a player shows the frames at a size one can see."""


def check_writable(path: str | Path) -> None:
    """Raises UsageError now, before any game is played, if the video cannot be written at `path`."""
    try:
        with open(path, "wb"):
            pass
    except OSError as err:
        raise UsageError(f"cannot write the video {path} ({err.strerror})") from None


def rgb_frame(image: np.ndarray, stacked: bool = True) -> np.ndarray:
    """An RGB uint8 [H', W', 3] frame of a screen given as RGB [H, W, 3], grayscale [H, W], a frame stack
    [S, H, W] (`stacked`: its newest frame) or another channels-first image [C, H, W] (RGB when C is 3,
    else each channel in a colour of its own, as MinAtar draws its grids), scaled up nearest-neighbour by
    the least whole factor that makes its shorter side at least MIN_VIDEO_PIXELS."""
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[-1] != 3:
        if stacked:  # oldest first
            image = image[-1]
        elif image.shape[0] == 3:
            image = image.transpose(1, 2, 0)
        else:
            image = _paint_channels(image)
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    image = np.clip(image, 0, 255).astype(np.uint8)
    scale = math.ceil(MIN_VIDEO_PIXELS / min(image.shape[:2]))
    return image.repeat(scale, axis=0).repeat(scale, axis=1) if scale > 1 else image


def _paint_channels(image: np.ndarray) -> np.ndarray:
    """[C, H, W] -> RGB [H, W, 3]: each pixel in the colour of its highest lit channel, black if none."""
    palette = np.array([[0, 0, 0]] + [[int(255 * c) for c in colorsys.hsv_to_rgb(k / len(image), 0.8, 1.0)]
                                      for k in range(len(image))], np.uint8)
    lit = image > 0
    top = np.where(lit.any(0), len(image) - np.argmax(lit[::-1], axis=0), 0)  # 1 + highest lit channel
    return palette[top]


def recordable_env(env_id: str, seed: int, sticky_actions: bool, frame_stack: int = 1) -> tuple[gym.Env, bool]:
    """An evaluation env of env_id that renders rgb_array frames where it can, and whether the screens
    come from its render() (else from its image observations); UsageError for an env with neither."""
    env = make_env(env_id, seed, training=False, sticky_actions=sticky_actions, frame_stack=frame_stack)
    if "rgb_array" in (env.metadata.get("render_modes") or ()):
        env.close()
        env = make_env(env_id, seed, training=False, sticky_actions=sticky_actions, frame_stack=frame_stack,
                       render_mode="rgb_array")
    try:
        return env, _screen_source(env, env_id, seed)
    except UsageError:
        env.close()
        raise


def _screen_source(env: gym.Env, env_id: str, seed: int) -> bool:
    """True when the screens come from env.render(), False when from image observations. Resets the env
    once to try render(): an env may declare rgb_array and still lack the library to draw it."""
    if env.render_mode == "rgb_array":
        env.reset(seed=seed)
        try:
            screen = env.render()
        except Exception as err:  # noqa: BLE001 - e.g. gymnasium's DependencyNotInstalled for pygame
            reason = f"render() failed: {err}"
        else:
            if isinstance(screen, np.ndarray) and screen.ndim == 3:
                return True
            reason = "render() returned no image"
    else:
        reason = "it does not render rgb_array frames"
    if is_image(env.observation_space):
        return False
    raise UsageError(f"cannot record {env_id}: {reason}, and its observations are not images")


class EpisodeRecorder(gym.Wrapper):
    """Writes the first episode played on `env` to `path` at `fps`.

    One frame per agent step: the screen each action was chosen on (the one after the reset, then the
    one after every step but the last), so the video has as many frames as the episode has steps.
    Screens come from env.render() with `use_render`, else from the image observations.
    """

    def __init__(self, env: gym.Env, path: str | Path, fps: float, use_render: bool):
        super().__init__(env)
        self.path, self.fps, self.use_render = Path(path), fps, use_render
        self.writer: cv2.VideoWriter | None = None
        self.frames = 0
        self.done = False
        self.stacked = stacked_frames(env) is not None

    def reset(self, **kwargs: Any):
        obs, info = self.env.reset(**kwargs)
        self._write(obs)
        return obs, info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        if terminated or truncated:
            self.finish()
        else:
            self._write(obs)
        return obs, reward, terminated, truncated, info

    def _write(self, obs: np.ndarray) -> None:
        if self.done:
            return
        frame = rgb_frame(self.env.render() if self.use_render else obs, self.stacked)
        if self.writer is None:
            height, width = frame.shape[:2]
            self.writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (width, height))
            if not self.writer.isOpened():
                raise UsageError(f"OpenCV cannot write the video {self.path} (codec mp4v)")
        self.writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        self.frames += 1

    def finish(self) -> None:
        """Ends the recording: the video file is complete once this returns."""
        if self.writer is not None and not self.done:
            self.writer.release()
        self.done = True

    def close(self) -> None:
        self.finish()
        super().close()
