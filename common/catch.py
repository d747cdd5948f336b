"""Catch from pixels: a small Atari-like task on which every family must learn within a minute.

A ball falls one row a step from a random column of the top row of a grid of 10 rows and 5 columns,
moving one column left or right each step and bouncing off the side walls; the agent moves a one-cell
paddle along the bottom row (left, stay, right). Reward +1 when the paddle is under the ball as it
reaches the bottom row, else -1, and the episode ends: 9 steps. The paddle can reach any column in
time, so an optimal policy scores +1; a random one about -0.6.

Like Pong, where the ball will land is not in one frame: the observation is a stack of the last 4
84 x 84 uint8 frames (cells of 8 x 16 pixels, in Pong's grey levels), oldest first, the shape and dtype of the Atari protocol,
so the same convolutional torsos, replays and frame handling run on it. The first stack of an episode
repeats the first frame. The env draws one frame; gymnasium's FrameStackObservation stacks them, which
tells the replays that each frame can be stored once (common.envs.stacked_frames).

MiniCatch is the same game in MinAtar's form: a 10 x 5 x 3 bool grid, channels last (paddle, ball,
the ball's previous cell: the trail that shows its direction, as MinAtar's Breakout shows it), so the
small-image path (layout, scale, small convolution) is tested on a task that learns in seconds.

Importing this module registers both with gymnasium, so `make_env("common.catch:Catch-v0", ...)` and
`common.catch:MiniCatch-v0` work in every process (gymnasium imports the module named before the colon).
"""
from __future__ import annotations

import gymnasium as gym
import numpy as np

ROWS, COLUMNS = 10, 5
CELL_HEIGHT, CELL_WIDTH = 8, 16
BACKGROUND, PADDLE, BALL = 87, 147, 236  # a lit background, like most Atari games
SIZE = 84
STACK = 4
_TOP, _LEFT = (SIZE - ROWS * CELL_HEIGHT) // 2, (SIZE - COLUMNS * CELL_WIDTH) // 2


class Catch(gym.Env):
    """One 84 x 84 frame per step; `make_catch` stacks them."""

    metadata = {"render_modes": []}

    def __init__(self):
        self.observation_space = gym.spaces.Box(0, 255, (SIZE, SIZE), np.uint8)
        self.action_space = gym.spaces.Discrete(3)  # left, stay, right
        self._row = self._col = self._dcol = self._paddle = 0
        self._last_col = 0

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._row, self._col = 0, int(self.np_random.integers(COLUMNS))
        self._dcol = int(self.np_random.choice((-1, 1)))
        self._paddle = COLUMNS // 2
        self._last_col = self._col
        return self._draw(), {}

    def step(self, action):
        self._paddle = min(COLUMNS - 1, max(0, self._paddle + int(action) - 1))
        self._row += 1
        self._last_col = self._col
        col = self._col + self._dcol
        if not 0 <= col < COLUMNS:  # bounce off the wall
            self._dcol = -self._dcol
            col = self._col + self._dcol
        self._col = col
        terminated = self._row == ROWS - 1
        reward = (1.0 if self._col == self._paddle else -1.0) if terminated else 0.0
        return self._draw(), reward, terminated, False, {}

    def _draw(self) -> np.ndarray:
        frame = np.full((SIZE, SIZE), BACKGROUND, np.uint8)
        frame[_rows(ROWS - 1), _columns(self._paddle)] = PADDLE
        frame[_rows(self._row), _columns(self._col)] = BALL
        return frame


def _rows(index: int) -> slice:
    return slice(_TOP + index * CELL_HEIGHT, _TOP + (index + 1) * CELL_HEIGHT)


def _columns(index: int) -> slice:
    return slice(_LEFT + index * CELL_WIDTH, _LEFT + (index + 1) * CELL_WIDTH)


class MiniCatch(Catch):
    """[ROWS, COLUMNS, 3] bool: paddle, ball, and the ball's cell one step before (none at the start)."""

    def __init__(self):
        super().__init__()
        self.observation_space = gym.spaces.Box(0, 1, (ROWS, COLUMNS, 3), np.bool_)

    def _draw(self) -> np.ndarray:
        grid = np.zeros((ROWS, COLUMNS, 3), np.bool_)
        grid[ROWS - 1, self._paddle, 0] = True
        grid[self._row, self._col, 1] = True
        if self._row > 0:
            grid[self._row - 1, self._last_col, 2] = True
        return grid


def make_catch() -> gym.Env:
    return gym.wrappers.FrameStackObservation(Catch(), STACK)


if "Catch-v0" not in gym.registry:
    gym.register("Catch-v0", entry_point=make_catch, max_episode_steps=ROWS)
if "MiniCatch-v0" not in gym.registry:
    gym.register("MiniCatch-v0", entry_point=MiniCatch, max_episode_steps=ROWS)

ENV_ID = "common.catch:Catch-v0"
MINI_ENV_ID = "common.catch:MiniCatch-v0"
