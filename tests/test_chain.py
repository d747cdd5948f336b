"""The hard-exploration chain (common/chain.py): its rewards, its falls and its time limit."""
from common.chain import ENV_ID, LARGE, SMALL, Chain
from common.envs import episode_return, make_env


def test_the_far_reward_takes_every_right_move_and_a_wrong_one_falls_back():
    env = Chain(16)
    env.reset(seed=0)
    for state in range(1, 15):
        obs, reward, terminated, truncated, _ = env.step(env.right[state])
        assert obs.argmax() == state + 1
    assert (reward, terminated, truncated) == (LARGE, True, False)
    env.reset(seed=0)
    env.step(env.right[1])
    env.step(env.right[2])
    obs, reward, terminated, _, _ = env.step(1 - env.right[3])  # the wrong action in state 3
    assert obs.argmax() == 1 and reward == 0.0 and not terminated
    obs, reward, terminated, _, _ = env.step(1 - env.right[1])  # left from the start: the distractor
    assert obs.argmax() == 0 and (reward, terminated) == (SMALL, True)


def test_an_episode_is_cut_after_twice_the_chain_length():
    env = make_env(ENV_ID, seed=0)
    env.reset(seed=0)
    inner = env.unwrapped
    for step in range(32):
        _, _, terminated, truncated, info = env.step(int(inner.right[inner.state]) if inner.state < 3 else
                                                     1 - int(inner.right[inner.state]))
        assert not terminated
    assert truncated and episode_return(info) == 0.0
