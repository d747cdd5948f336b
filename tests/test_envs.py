"""The DQN Atari protocol and the vector-observation path."""
import numpy as np
import pytest

from common.errors import UsageError
from common.envs import episode_return, make_env


def test_atari_observations_are_stacked_84x84_grayscale_frames():
    env = make_env("ALE/Pong-v5", seed=0)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (4, 84, 84) and obs.dtype == np.uint8
    obs2, reward, *_ = env.step(0)
    assert np.array_equal(obs2[:3], obs[1:])  # the stack shifts by one frame per agent step
    env.close()


def test_frames_match_gymnasiums_preprocessing_of_the_grayscale_screen():
    # make_env's base env observes the RAM (ScreenShape): AtariPreprocessing reads the screens itself, so
    # its frames must be those it makes over a grayscale base env, step for step
    import ale_py
    import gymnasium as gym
    from gymnasium.wrappers import AtariPreprocessing

    gym.register_envs(ale_py)
    reference = AtariPreprocessing(gym.make("ALE/Breakout-v5", frameskip=1, repeat_action_probability=0.0,
                                            obs_type="grayscale"), noop_max=30, frame_skip=4)
    env = make_env("ALE/Breakout-v5", seed=3, training=False)
    reference.reset(seed=3)
    obs, _ = env.reset(seed=3)
    reference.step(1)  # make_env presses FIRE (then action 2) after every reset: Breakout needs it
    frame, *_ = reference.step(2)
    assert np.array_equal(obs[-1], frame)
    rng = np.random.default_rng(3)
    for _ in range(300):
        action = int(rng.integers(4))
        obs, reward, *_ = env.step(action)
        frame, raw_reward, *_ = reference.step(action)
        assert np.array_equal(obs[-1], frame) and reward == raw_reward
    assert obs.any(), "the frames are the screen, not blank buffers"
    env.close()
    reference.close()


def test_life_loss_is_terminal_for_training_but_the_game_goes_on():
    env = make_env("ALE/Breakout-v5", seed=1)
    env.reset(seed=1)
    ale = env.unwrapped.ale
    rng = np.random.default_rng(1)
    rewards = []
    for _ in range(5000):
        _, reward, terminated, truncated, info = env.step(int(rng.integers(4)))
        rewards.append(reward)
        if terminated:
            break
    assert terminated and ale.lives() == 4, "the first lost life ends the training episode"
    assert episode_return(info) is None, "no game ended, so no raw return is logged"
    env.reset()
    assert ale.lives() == 4, "reset after a lost life continues the game"
    assert set(rewards) <= {0.0, 1.0}, "training rewards are clipped"
    env.close()


def test_evaluation_env_reports_the_raw_score_of_a_whole_game():
    env = make_env("ALE/Breakout-v5", seed=2, training=False)
    env.reset(seed=2)
    rng = np.random.default_rng(2)
    total, finished = 0.0, None
    for _ in range(20_000):
        _, reward, terminated, truncated, info = env.step(int(rng.integers(4)))
        total += reward
        finished = episode_return(info)
        if terminated or truncated:
            break
    assert env.unwrapped.ale.lives() == 0
    assert finished == total
    env.close()


def test_vector_envs_give_flat_float32_observations():
    env = make_env("CartPole-v1", seed=0)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (4,) and obs.dtype == np.float32


@pytest.mark.parametrize("env_id", ["NoSuchEnv-v0", "ALE/NoSuchGame-v5"])
def test_unknown_env_ids_are_usage_errors(env_id):
    with pytest.raises(UsageError, match="unknown"):
        make_env(env_id, seed=0)


def test_continuous_actions_are_refused():
    with pytest.raises(UsageError, match="discrete"):
        make_env("Pendulum-v1", seed=0)


def test_an_image_env_keeps_its_frames_and_observes_frames():
    from common.catch import ENV_ID
    from common.envs import observes_frames

    env = make_env(ENV_ID, seed=0)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (4, 84, 84) and obs.dtype == np.uint8  # not flattened into a vector
    obs2, *_ = env.step(1)
    assert np.array_equal(obs2[:3], obs[1:]) and not np.array_equal(obs2[3], obs[3])  # the ball moved
    env.close()
    assert observes_frames(ENV_ID) and observes_frames("ALE/Pong-v5")
    assert not observes_frames("CartPole-v1") and not observes_frames("NoSuchEnv-v0")


def test_catch_pays_one_at_the_bottom_row_after_nine_steps():
    from common.catch import ENV_ID

    env = make_env(ENV_ID, seed=0)
    for seed in range(20):
        env.reset(seed=seed)
        rewards = []
        for _ in range(9):  # stay: the paddle waits in the middle column
            _, reward, terminated, truncated, info = env.step(1)
            rewards.append(reward)
        assert terminated and not truncated and rewards[:8] == [0.0] * 8 and rewards[8] in (-1.0, 1.0)
        assert episode_return(info) == rewards[8]
    env.close()
