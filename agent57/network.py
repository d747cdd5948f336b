"""Agent57's networks: two NGU Q-networks, one per reward, besides NGU's embedding and RND.

Badia et al. 2020 ("Agent57"), section 4: the state-action value is split into an extrinsic part
Q_e and an intrinsic part Q_i, two networks of the same shape (NGU's recurrent dueling network,
conditioned on the policy's one-hot j and fed the previous action, extrinsic and intrinsic rewards),
each trained on its own reward. The policy acts on Q = Q_e + beta_j Q_i, mixed as the networks give
them, in h-space (the paper's experiments mix without undoing the rescaling).

The recurrent state of the pair is one vector: (h_e, h_i) and (c_e, c_i) side by side, so the
sequence replay stores it as one state of twice the LSTM's size.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from common.networks import LstmState
from ngu.network import RND, EmbeddingNetwork, NGUNetwork


class Agent57Model(nn.Module):
    """Everything the learner trains and publishes: Q_e, Q_i, the embedding f and RND."""

    def __init__(self, obs_shape: Sequence[int], num_actions: int, num_policies: int, hidden_size: int,
                 lstm_size: int, embedding_size: int, rnd_output_size: int):
        super().__init__()
        self.q_e = NGUNetwork(obs_shape, num_actions, num_policies, hidden_size, lstm_size)
        self.q_i = NGUNetwork(obs_shape, num_actions, num_policies, hidden_size, lstm_size)
        self.embedding = EmbeddingNetwork(obs_shape, num_actions, hidden_size, embedding_size)
        self.rnd = RND(obs_shape, hidden_size, rnd_output_size)

    @property
    def lstm_size(self) -> int:
        return self.q_e.lstm_size

    def heads(self) -> tuple[NGUNetwork, NGUNetwork]:
        return self.q_e, self.q_i


def split_state(state: LstmState) -> tuple[LstmState, LstmState]:
    """The pair's state [B, 2H] as (Q_e's, Q_i's), [B, H] each."""
    h_e, h_i = state.h.chunk(2, dim=-1)
    c_e, c_i = state.c.chunk(2, dim=-1)
    return LstmState(h_e, c_e), LstmState(h_i, c_i)


def join_state(extrinsic: LstmState, intrinsic: LstmState) -> LstmState:
    return LstmState(torch.cat([extrinsic.h, intrinsic.h], -1), torch.cat([extrinsic.c, intrinsic.c], -1))


def mixed_q(q_e: torch.Tensor, q_i: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    """Q = Q_e + beta_j Q_i. q_e, q_i: [..., A]; beta: [...] (each one's beta_j) -> [..., A]."""
    return q_e + beta.unsqueeze(-1) * q_i


def make_model(cfg, obs_shape: tuple[int, ...], num_actions: int) -> Agent57Model:
    """The Agent57 model of an `agent57.config.Config`."""
    return Agent57Model(obs_shape, num_actions, cfg.num_policies, cfg.hidden_size, cfg.lstm_size, cfg.embedding_size,
                        cfg.rnd_output_size)
