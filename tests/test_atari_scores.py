import math

import pytest

from common.atari_scores import SCORES, game_name, human_normalized_score


def test_all_57_games():
    assert len(SCORES) == 57


@pytest.mark.parametrize("env_id, game", [("ALE/Pong-v5", "pong"), ("ALE/MontezumaRevenge-v5", "montezuma_revenge"),
                                          ("ALE/Qbert-v5", "qbert"), ("ALE/UpNDown-v5", "up_n_down"),
                                          ("PongNoFrameskip-v4", "pong"), ("BreakoutNoFrameskip-v4", "breakout"),
                                          ("SpaceInvaders-v4", "space_invaders")])
def test_env_ids_map_to_games(env_id, game):
    assert game_name(env_id) == game


def test_hns_by_hand():
    # Pong: random -20.7, human 14.6; a score of 21 is (21 + 20.7) / 35.3
    assert human_normalized_score("ALE/Pong-v5", 21.0) == pytest.approx(41.7 / 35.3)
    assert human_normalized_score("ALE/Breakout-v5", 1.7) == 0.0
    assert human_normalized_score("ALE/Breakout-v5", 30.5) == pytest.approx(1.0)
    assert math.isnan(human_normalized_score("CartPole-v1", 500.0))
