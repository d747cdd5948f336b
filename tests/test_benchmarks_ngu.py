"""benchmarks.ngu's reward-scale part on a task whose reward is known."""
from benchmarks.ngu import reward_scale


def test_reward_scale_sets_the_games_points_beside_the_intrinsic_reward_and_beta():
    """CartPole pays 1 every step, whatever the policy; the episodic reward is 1 / (sqrt(sum K) + 0.001)
    times a modulator in [1, 5], so every step's lies in (0, 5 / 0.001]; vectors keep the paper's beta."""
    row = reward_scale("CartPole-v1", steps=200)
    assert row["steps"] == 200 and row["extrinsic mean"] == 1.0 and row["beta (NGU default)"] == 0.3
    assert 0 < row["intrinsic p10"] <= row["intrinsic median"] <= row["intrinsic p90"] <= 5000
