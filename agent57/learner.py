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

The embedding and RND train as NGU's, on the last `aux_steps` transitions of each sequence
(`ngu.loss.aux_transitions`), with their own Adam.
"""
from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch
from torch import nn

from agent57.config import Config
from agent57.network import Agent57Model, make_model, mixed_q, split_state
from common.counters import RunCounters
from common.distributed.learner_loop import finish_update, learner_state, load_learner_state
from common.distributed.seams import ReplayClient
from common.distributed.sequences import DeviceSequences, to_device
from common.replay.sequence import SequenceBatch, SequenceBlock
from ngu.family import betas
from ngu.loss import aux_loss, aux_transitions, ngu_loss, retrace_targets, retrace_traces


class Learner:
    def __init__(self, cfg: Config, obs_shape: tuple[int, ...], num_actions: int, device: torch.device,
                 replay: ReplayClient[SequenceBlock, SequenceBatch], counters: RunCounters):
        self.cfg, self.device, self.replay, self.counters = cfg, device, replay, counters
        torch.manual_seed(cfg.seed)
        self.net: Agent57Model = make_model(cfg, obs_shape, num_actions).to(device)
        self.target = copy.deepcopy(self.net).requires_grad_(False)
        self.optimizer = torch.optim.Adam([*self.net.q_e.parameters(), *self.net.q_i.parameters()], lr=cfg.lr,
                                          eps=cfg.adam_eps)
        self.aux_parameters = [*self.net.embedding.parameters(), *self.net.rnd.predictor.parameters()]
        self.aux_optimizer = torch.optim.Adam(self.aux_parameters, lr=cfg.aux_lr)
        self.betas = torch.tensor(betas(cfg.num_policies, cfg.intrinsic_beta), dtype=torch.float32, device=device)
        self.updates = 0
        self.rng = np.random.default_rng(cfg.seed + 7)

    def ready(self) -> bool:
        return len(self.replay) >= max(self.cfg.learning_starts, self.cfg.batch_size)

    def sample(self) -> DeviceSequences:
        return to_device(self.replay.sample(self.cfg.batch_size, self.cfg.beta, self.rng), self.device)

    def burn_in_lengths(self, batch: DeviceSequences) -> torch.Tensor:
        return torch.where(batch.episode_start, 0, self.cfg.burn_in).long()

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

    def update_aux(self, batch: DeviceSequences) -> float:
        """One step of the embedding's inverse model and RND's predictor; returns their summed loss."""
        obs, next_obs, action = aux_transitions(batch.obs, batch.action, batch.mask, self.cfg.aux_steps)
        self.net.rnd.update_obs_stats(next_obs)
        loss = aux_loss(self.net.embedding, self.net.rnd, obs, next_obs, action)
        self.aux_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.aux_parameters, self.cfg.max_grad_norm)
        self.aux_optimizer.step()
        self.aux_optimizer.zero_grad(set_to_none=True)
        return float(loss.detach())

    def update(self, batch: DeviceSequences) -> np.ndarray:
        """One gradient step on `batch`; writes its new priorities; returns them, [B] float32."""
        self.update_aux(batch)
        loss, priority, _ = self.retrace_losses(batch, self.q_values(batch))
        priority = priority.detach().cpu().numpy()
        finish_update(self, loss, self.cfg.max_grad_norm, self.cfg.target_update_interval, batch.key, priority)
        return priority

    def state_dict(self) -> dict[str, Any]:
        return {**learner_state(self), "aux_optimizer": self.aux_optimizer.state_dict()}

    def load_state_dict(self, saved: dict[str, Any]) -> None:
        load_learner_state(self, saved)
        self.aux_optimizer.load_state_dict(saved["aux_optimizer"])
