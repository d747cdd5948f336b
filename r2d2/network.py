"""R2D2's recurrent Q-network: torso -> LSTM -> dueling head (Kapturowski et al. 2019, section 2.3).

The LSTM's input at step t is the torso's features of o_t, the one-hot previous action a_{t-1} and
the previous reward r_{t-1} (both zero at an episode's first step). The state at an episode's first
step is the zero state; the actor resets it there, and a stored sequence that starts an episode
carries zeros.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from common.networks import LstmState, dueling_aggregate, make_torso
from r2d2.config import Config


class R2D2Network(nn.Module):
    """Shared torso (Atari conv or MLP, `common.networks`) of width `hidden_size`, a one-layer LSTM of
    `lstm_size` units, then dueling value and advantage heads (Wang et al. 2016)."""

    def __init__(self, obs_shape: Sequence[int], num_actions: int, hidden_size: int, lstm_size: int,
                 extra_inputs: int = 0):
        """extra_inputs: LSTM inputs a subclass's `unroll` adds after the previous reward (NGU's)."""
        super().__init__()
        self.num_actions = num_actions
        self.torso = make_torso(obs_shape, hidden_size)
        self.lstm = nn.LSTM(self.torso.out_dim + num_actions + 1 + extra_inputs, lstm_size)
        self.advantage = nn.Linear(lstm_size, num_actions)
        self.value = nn.Linear(lstm_size, 1)

    @property
    def lstm_size(self) -> int:
        return self.lstm.hidden_size

    def initial_state(self, batch: int = 1) -> LstmState:
        """The zero state of an episode's first step: h, c [B, H]."""
        zeros = torch.zeros(batch, self.lstm_size, device=self.value.weight.device)
        return LstmState(zeros, zeros.clone())

    def unroll(self, obs: torch.Tensor, prev_action: torch.Tensor, prev_reward: torch.Tensor,
               state: LstmState, extra: torch.Tensor | None = None) -> tuple[torch.Tensor, LstmState]:
        """obs: [T, B, *obs_shape]; prev_action: [T, B] int64; prev_reward: [T, B] float32;
        state: the state before step 0; extra: [T, B, extra_inputs] or None
        -> (q: [T, B, A] float32, the state after step T - 1)."""
        steps, batch = prev_action.shape
        features = self.torso(obs.reshape(steps * batch, *obs.shape[2:])).reshape(steps, batch, -1)
        one_hot = F.one_hot(prev_action.long(), self.num_actions).float()  # [T, B, A]
        inputs = [features, one_hot, prev_reward.float().unsqueeze(-1)] + ([extra.float()] if extra is not None else [])
        x = torch.cat(inputs, dim=-1)
        out, (h, c) = self.lstm(x, (state.h.unsqueeze(0).contiguous(), state.c.unsqueeze(0).contiguous()))
        q = dueling_aggregate(self.value(out), self.advantage(out))  # [T, B, A]
        return q, LstmState(h.squeeze(0), c.squeeze(0))

    def step(self, obs: torch.Tensor, prev_action: torch.Tensor, prev_reward: torch.Tensor,
             state: LstmState) -> tuple[torch.Tensor, LstmState]:
        """One step for B envs: obs [B, *obs_shape], prev_action [B], prev_reward [B] -> (q [B, A], state)."""
        q, state = self.unroll(obs.unsqueeze(0), prev_action.unsqueeze(0), prev_reward.unsqueeze(0), state)
        return q.squeeze(0), state

    def unroll_after_burn_in(self, obs: torch.Tensor, prev_action: torch.Tensor, prev_reward: torch.Tensor,
                             state: LstmState, burn_in: int, episode_start: torch.Tensor,
                             extra: torch.Tensor | None = None) -> torch.Tensor:
        """`unroll`'s Q for a learner: [T, B, A], with no gradient through the first `burn_in` steps of
        the sequences that do not start an episode (section 2.3: they only warm the stored state up);
        episode_start: [B] bool (those sequences train from step 0)."""
        if burn_in == 0:
            return self.unroll(obs, prev_action, prev_reward, state, extra)[0]
        cut = slice(0, burn_in)
        rest = slice(burn_in, None)
        with torch.set_grad_enabled(torch.is_grad_enabled() and bool(episode_start.any())):
            q_burn, state = self.unroll(obs[cut], prev_action[cut], prev_reward[cut], state,
                                        None if extra is None else extra[cut])
        keep = episode_start.unsqueeze(-1)  # the gradient goes on only where the steps train
        state = LstmState(torch.where(keep, state.h, state.h.detach()), torch.where(keep, state.c, state.c.detach()))
        q_rest, _ = self.unroll(obs[rest], prev_action[rest], prev_reward[rest], state,
                                None if extra is None else extra[rest])
        return torch.cat([q_burn, q_rest])


def shared_cell(lstm: nn.LSTM) -> nn.LSTMCell:
    """An LSTMCell on the very parameter tensors of the one-layer `lstm`: in-place updates of the
    network (`ParameterChannel.poll`) reach it with no copy."""
    cell = nn.LSTMCell(lstm.input_size, lstm.hidden_size)
    cell.weight_ih, cell.weight_hh = lstm.weight_ih_l0, lstm.weight_hh_l0
    cell.bias_ih, cell.bias_hh = lstm.bias_ih_l0, lstm.bias_hh_l0
    return cell


def act_step(net: R2D2Network, cell: nn.LSTMCell, obs: torch.Tensor, prev_action: torch.Tensor,
             prev_reward: torch.Tensor, state: LstmState,
             extra: torch.Tensor | None = None) -> tuple[torch.Tensor, LstmState]:
    """`net.step` for an actor, with the LSTM as `cell` (`shared_cell(net.lstm)`): on CPU `nn.LSTM`
    called for one step takes oneDNN's slower path (benchmarks/results/r2d2_act_step.md). obs
    [B, *obs_shape], prev_action [B] int64, prev_reward [B] float32, state h, c [B, H], extra
    [B, extra_inputs] or None -> (q [B, A], the state after the step)."""
    one_hot = F.one_hot(prev_action, net.num_actions).float()  # [B, A]
    inputs = [net.torso(obs), one_hot, prev_reward.unsqueeze(-1)] + ([extra.float()] if extra is not None else [])
    h, c = cell(torch.cat(inputs, dim=-1), (state.h, state.c))
    return dueling_aggregate(net.value(h), net.advantage(h)), LstmState(h, c)


def make_network(cfg: Config, obs_shape: tuple[int, ...], num_actions: int) -> R2D2Network:
    return R2D2Network(obs_shape, num_actions, cfg.hidden_size, cfg.lstm_size)
