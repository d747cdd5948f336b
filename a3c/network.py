"""Networks of the asynchronous methods: an actor-critic (optionally with an LSTM) and a Q-network."""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from a3c.config import Config
from common.networks import make_torso

State = tuple[torch.Tensor, torch.Tensor] | None


class ActorCritic(nn.Module):
    """Torso -> [LSTM] -> policy logits and state value (A3C, Mnih et al. 2016 section 8).

    With `separate_value`, the value has a feed-forward torso of its own (used for small vector tasks,
    where the value loss's large gradients otherwise swamp the policy's features in a shared torso);
    with an LSTM the value then has no memory: a baseline and bootstrap of the observation alone.
    """

    def __init__(self, obs_shape: Sequence[int], num_actions: int, hidden_size: int, lstm_size: int = 0,
                 separate_value: bool = False):
        super().__init__()
        self.torso = make_torso(obs_shape, hidden_size, channels_last=True)
        self.value_torso = make_torso(obs_shape, hidden_size, channels_last=True) if separate_value else None
        self.lstm = nn.LSTMCell(self.torso.out_dim, lstm_size) if lstm_size else None
        features = lstm_size or self.torso.out_dim
        self.policy = nn.Linear(features, num_actions)
        self.value = nn.Linear(self.value_torso.out_dim if self.value_torso is not None else features, 1)

    def initial_state(self, batch: int = 1) -> State:
        if self.lstm is None:
            return None
        zeros = torch.zeros(batch, self.lstm.hidden_size)
        return zeros, zeros.clone()

    def forward(self, obs: torch.Tensor, state: State = None) -> tuple[torch.Tensor, torch.Tensor, State]:
        """obs: [T, *obs_shape] -> logits [T, A], values [T], final state.

        With an LSTM the T rows are consecutive steps of one episode, unrolled from `state`.
        """
        x = self.torso(obs)  # [T, F]
        if self.lstm is not None:
            h, c = state if state is not None else self.initial_state()
            rows = []
            for x_t in x.split(1):
                h, c = self.lstm(x_t, (h, c))
                rows.append(h)
            x, state = torch.cat(rows), (h, c)
        value_features = self.value_torso(obs) if self.value_torso is not None else x
        return self.policy(x), self.value(value_features).squeeze(-1), state

    def greedy_action(self, obs: torch.Tensor, state: State) -> tuple[int, State]:
        logits, _, state = self(obs.unsqueeze(0), state)
        return int(logits.argmax(-1)), state


class QNetwork(nn.Module):
    """Torso -> linear Q-values, for async 1-step Q, 1-step SARSA and n-step Q."""

    def __init__(self, obs_shape: Sequence[int], num_actions: int, hidden_size: int):
        super().__init__()
        self.torso = make_torso(obs_shape, hidden_size, channels_last=True)
        self.q = nn.Linear(self.torso.out_dim, num_actions)

    def initial_state(self, batch: int = 1) -> State:
        return None

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """obs: [B, *obs_shape] -> q: [B, A]."""
        return self.q(self.torso(obs))

    def greedy_action(self, obs: torch.Tensor, state: State) -> tuple[int, State]:
        return int(self(obs.unsqueeze(0)).argmax(-1)), None


@torch.no_grad()
def orthogonal_init_(model: nn.Module) -> nn.Module:
    """Orthogonal weights and zero biases (Saxe et al. 2014), as OpenAI baselines' A2C initialises them:
    gain sqrt(2) for the ReLU layers, 0.01 for the policy's logits (so the first policy is uniform in
    every state) and 1 for the value and Q heads. The LSTM keeps torch's initialisation.

    With torch's default (uniform, variance 1 / (3 fan_in)) the Atari torso's features hardly vary
    between Pong frames and the first updates drive most of its ReLU units dead (README, "A3C on Pong").
    """
    heads = {"policy": 0.01, "value": 1.0, "q": 1.0}
    for name, module in model.named_modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            gain = heads.get(name, math.sqrt(2.0))
            weight = torch.empty(module.weight.shape)  # then copied in, keeping a channels-last layout
            nn.init.orthogonal_(weight, gain)
            module.weight.copy_(weight)
            nn.init.zeros_(module.bias)
    return model


def make_model(cfg: Config, obs_shape: Sequence[int], num_actions: int) -> nn.Module:
    if cfg.is_policy_method:
        lstm_size = cfg.lstm_size if cfg.algo == "a3c-lstm" else 0
        model = ActorCritic(obs_shape, num_actions, cfg.hidden_size, lstm_size, separate_value=len(obs_shape) == 1)
    else:
        model = QNetwork(obs_shape, num_actions, cfg.hidden_size)
    return orthogonal_init_(model) if cfg.weight_init == "orthogonal" else model
