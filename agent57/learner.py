"""The Agent57 learner: NGU's update with the value split into two networks (Badia et al. 2020,
"Agent57", section 4).

Both networks are unrolled on the same sampled sequences (each from its half of the stored state,
`agent57.network.split_state`), fed the same inputs. The target policy is greedy on the online mixed
Q = Q_e + beta_j Q_i; its traces c = lambda min(1, pi / mu) are shared. Then each network gets its own
transformed Retrace loss (`ngu.loss`) on its own reward: Q_e on r_e, Q_i on r_i, each bootstrapping
from its own target network at the mixed greedy action, both with the discount gamma_j. The update
steps both on the sum of the two losses.

Priorities: max(p_e, p_i) of the two heads' R2D2 mixes of |TD|. Each head trains on every sequence
whatever its j, so a sequence is worth replaying when either head has much to learn from it; a mean
would halve a large error of one head when the other already fits.

The embedding and RND train as NGU's (`ngu.intrinsic.IntrinsicTrainer`).
"""
from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch

from agent57.config import Config
from agent57.network import Agent57Model, make_model, mixed_q, split_state
from common.counters import RunCounters
from common.distributed.learner_loop import finish_update, learner_state, load_learner_state
from common.distributed.seams import ReplayClient
from common.distributed.sequences import DeviceSequences, SequenceSampling
from common.replay.sequence import SequenceBatch, SequenceBlock
from ngu.family import betas
from ngu.intrinsic import IntrinsicTrainer
from ngu.loss import ngu_loss, retrace_targets, retrace_traces


class Learner(SequenceSampling):
    def __init__(self, cfg: Config, obs_shape: tuple[int, ...], num_actions: int, device: torch.device,
                 replay: ReplayClient[SequenceBlock, SequenceBatch], counters: RunCounters):
        self.cfg, self.device, self.replay, self.counters = cfg, device, replay, counters
        torch.manual_seed(cfg.seed)
        self.net: Agent57Model = make_model(cfg, obs_shape, num_actions).to(device)
        self.target = copy.deepcopy(self.net).requires_grad_(False)
        self.optimizer = torch.optim.Adam([*self.net.q_e.parameters(), *self.net.q_i.parameters()], lr=cfg.lr,
                                          eps=cfg.adam_eps)
        self.intrinsic = IntrinsicTrainer(self.net.embedding, self.net.rnd, cfg.aux_lr, cfg.aux_steps,
                                          cfg.max_grad_norm)
        self.betas = torch.tensor(betas(cfg.num_policies, cfg.intrinsic_beta), dtype=torch.float32, device=device)
        self.updates = 0
        self.rng = np.random.default_rng(cfg.seed + 7)

    def q_values(self, batch: DeviceSequences) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """[(online Q, target Q)] of Q_e and of Q_i, [T, B, A] each (online with gradient after the burn-in)."""
        _, _, policy = batch.extra.unbind(-1)
        extra = self.net.q_e.extra_inputs(batch.prev_extra[..., 0], policy.long())
        out = []
        for online, target, state in zip(self.net.heads(), self.target.heads(), split_state(batch.state)):
            q = online.unroll_after_burn_in(batch.obs, batch.prev_action, batch.prev_reward, state,
                                            self.cfg.burn_in, batch.episode_start, extra)
            with torch.no_grad():
                q_target, _ = target.unroll(batch.obs, batch.prev_action, batch.prev_reward, state, extra)
            out.append((q, q_target))
        return out

    def retrace_losses(self, batch: DeviceSequences, heads: list[tuple[torch.Tensor, torch.Tensor]]
                       ) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        """(the two losses' sum, priorities [B], [Retrace targets y of Q_e, of Q_i] [T, B])."""
        intrinsic, behaviour_prob, policy = batch.extra.unbind(-1)
        (q_e, _), (q_i, _) = heads
        greedy = mixed_q(q_e.detach(), q_i.detach(), self.betas[policy.long()]).argmax(-1)  # [T, B]: pi
        traces = retrace_traces((batch.action == greedy).float(), behaviour_prob, self.cfg.retrace_lambda)
        action = batch.action.unsqueeze(-1)
        total, priorities, targets = 0.0, [], []
        for (q, q_target), reward in zip(heads, (batch.reward, intrinsic)):
            v = q_target.gather(-1, greedy.unsqueeze(-1)).squeeze(-1)
            v_next = torch.cat([v[1:], torch.zeros_like(v[:1])])
            y, trainable = retrace_targets(q_target.gather(-1, action).squeeze(-1), v_next, reward, batch.discount,
                                           traces, batch.mask)
            loss, priority = ngu_loss(q.gather(-1, action).squeeze(-1), y, trainable, batch.weight,
                                      self.burn_in_lengths(batch), self.cfg.eta)
            total, targets = total + loss, targets + [y]
            priorities.append(priority)
        return total, torch.maximum(*priorities), targets

    def update(self, batch: DeviceSequences) -> np.ndarray:
        """One gradient step on `batch`; writes its new priorities; returns them, [B] float32."""
        self.intrinsic.update(batch.obs, batch.action, batch.mask)
        loss, priority, _ = self.retrace_losses(batch, self.q_values(batch))
        priority = priority.detach().cpu().numpy()
        finish_update(self, loss, self.cfg.max_grad_norm, self.cfg.target_update_interval, batch.key, priority)
        return priority

    def state_dict(self) -> dict[str, Any]:
        return {**learner_state(self), "aux_optimizer": self.intrinsic.state_dict()}

    def load_state_dict(self, saved: dict[str, Any]) -> None:
        load_learner_state(self, saved)
        self.intrinsic.load_state_dict(saved["aux_optimizer"])
