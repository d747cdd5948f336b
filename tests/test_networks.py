"""Which families keep their Atari convolution weights channels-last (see common.networks.ImageTorso)."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from a3c.config import make_config
from a3c.network import make_model
from apex.network import QNetwork
from common.networks import ImageTorso
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
    default, channels_last = ImageTorso(channels_last=False), ImageTorso(channels_last=True)
    channels_last.load_state_dict(default.state_dict())  # copies the values into the channels-last storage
    assert channels_last.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    obs = torch.randint(0, 256, (3, *ATARI), dtype=torch.uint8)
    expected = default(obs)
    assert expected.shape == (3, 256) and expected.abs().sum() > 0
    torch.testing.assert_close(channels_last(obs), expected, rtol=1e-5, atol=1e-5)


def _pong_frames(count: int = 64) -> torch.Tensor:
    from common.envs import make_env

    env = make_env("ALE/Pong-v5", seed=0, training=False)
    obs, _ = env.reset(seed=0)
    frames = []
    for _ in range(count):
        frames.append(torch.as_tensor(obs))
        obs, *_ = env.step(env.action_space.sample())
    env.close()
    return torch.stack(frames)


@pytest.mark.parametrize("algo", ["a3c", "a3c-lstm"])
def test_the_a3c_atari_defaults_start_with_a_uniform_policy_on_a_torso_of_usable_scale(algo):
    """The defect behind A3C not learning Pong: with torch's default initialisation the pre-activations
    of the torso's fully connected layer were about 0.02 in size and differed by about 0.001 between
    Pong frames, so the first optimizer steps (each weight of its 2,592 non-negative inputs moving
    together) drove most of its ReLU units dead for every frame. Orthogonal weights with gain sqrt(2)
    make them about 20 times larger; the policy head's gain 0.01 keeps every first policy uniform."""
    torch.manual_seed(0)
    model = make_model(make_config({"algo": algo, "env_id": "ALE/Pong-v5"}), ATARI, 6)
    frames = _pong_frames()
    torso = model.torso
    with torch.no_grad():
        x = F.relu(torso.conv2(F.relu(torso.conv1(frames.float() / 255.0))))
        pre = torso.fc(x.flatten(1))  # [64, 256]
        features = F.relu(pre)
        state = model.initial_state(len(frames))
        logits = model.policy(model.lstm(features, state)[0] if model.lstm is not None else features)
    assert pre.abs().mean() > 0.1  # torch's initialisation: 0.02
    assert pre.std(0).mean() > 0.01  # each unit's spread across frames, averaged over units; torch's: 0.001
    assert logits.abs().max() < 0.02  # every action's probability within 2% of 1/6


def test_on_vector_tasks_the_lstm_value_has_a_torso_of_its_own_and_no_memory():
    """A3C-LSTM on Acrobot: with the value sharing the torso and LSTM its gradients swamped the policy's
    features and no seed learned; on a torso of its own (as feed-forward A3C's) the value loss reaches
    none of the policy's weights, and the value of an observation is the same whatever the memory."""
    torch.manual_seed(0)
    model = make_model(make_config({"algo": "a3c-lstm", "env_id": "CartPole-v1"}), (4,), 2)
    obs = torch.randn(3, 4)
    state = (torch.randn(1, model.lstm.hidden_size), torch.randn(1, model.lstm.hidden_size))
    logits, values, _ = model(obs)
    logits_after, values_after, _ = model(obs, state)
    assert not torch.allclose(logits, logits_after)  # the policy remembers
    torch.testing.assert_close(values, values_after)  # the value does not
    values.sum().backward()
    policy_side = [*model.torso.parameters(), *model.lstm.parameters(), *model.policy.parameters()]
    assert all(p.grad is None for p in policy_side)
    assert all(p.grad is not None for p in model.value_torso.parameters())


def test_on_frames_the_lstm_value_shares_the_torso_and_memory():
    model = make_model(make_config({"algo": "a3c-lstm", "env_id": "ALE/Pong-v5"}), ATARI, 6)
    assert model.value_torso is None and model.value.in_features == model.lstm.hidden_size
