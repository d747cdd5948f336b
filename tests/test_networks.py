"""Which families keep their Atari convolution weights channels-last (see common.networks.AtariTorso)."""
import pytest
import torch
from torch import nn

from a3c.config import make_config
from a3c.network import make_model
from apex.network import QNetwork
from common.networks import AtariTorso
from r2d2.network import R2D2Network

ATARI = (4, 84, 84)


def _conv_weights(model: nn.Module) -> list[torch.Tensor]:
    return [m.weight for m in model.modules() if isinstance(m, nn.Conv2d)]


@pytest.mark.parametrize("algo", ["a3c", "a3c-lstm", "q1"])
def test_the_a3c_family_runs_channels_last(algo):
    weights = _conv_weights(make_model(make_config({"algo": algo, "env_id": "ALE/Pong-v5"}), ATARI, 6))
    assert len(weights) >= 2
    assert all(w.is_contiguous(memory_format=torch.channels_last) and not w.is_contiguous() for w in weights)


@pytest.mark.parametrize("model", [QNetwork(ATARI, 6, 512, dueling=True), R2D2Network(ATARI, 6, 512, 512)],
                         ids=["apex", "r2d2"])
def test_the_replay_family_keeps_the_default_layout(model):
    weights = _conv_weights(model)
    assert len(weights) >= 2 and all(w.is_contiguous() for w in weights)


def test_channels_last_changes_the_layout_not_the_result():
    torch.manual_seed(0)
    default, channels_last = AtariTorso(channels_last=False), AtariTorso(channels_last=True)
    channels_last.load_state_dict(default.state_dict())  # copies the values into the channels-last storage
    assert channels_last.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    obs = torch.randint(0, 256, (3, *ATARI), dtype=torch.uint8)
    expected = default(obs)
    assert expected.shape == (3, 256) and expected.abs().sum() > 0
    torch.testing.assert_close(channels_last(obs), expected, rtol=1e-5, atol=1e-5)
