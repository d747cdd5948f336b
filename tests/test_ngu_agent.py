"""NGU's actor and learner put the paper's parts together as the paper says (Badia et al. 2020).

Hand-computed: the behaviour probabilities of epsilon-greedy, which transitions train the embedding and
RND, and one Retrace loss with the reward r_e + beta_j r_i and the discount gamma_j. Checked on a
running actor: every stored step carries its policy's discount and a behaviour probability, the
previous intrinsic reward fed to the LSTM is the one stored for the step before, and the episodic
memory holds the whole episode, not one sequence of it.
"""
import math

import numpy as np
import pytest
import torch

import agent57.network
import agent57.train
import ngu.network
import ngu.train
from common.chain import ENV_ID
from common.counters import RunCounters
from common.distributed.actor_loop import epsilon_greedy_probs
from common.distributed.params import PublishedParams
from common.distributed.sequences import DeviceSequences
from common.envs import make_env
from common.networks import LstmState
from common.recipe import describe_env
from common.replay.sequence import SequenceReplay
from ngu.actor import EXTRAS, Actor
from ngu.config import make_config
from ngu.family import betas, gammas
from ngu.learner import Learner
from ngu.loss import last_transitions
from ngu.network import make_model
from ngu.train import replay_config


def h(x: float) -> float:
    """R2D2's value rescaling with eps 1e-3."""
    return math.copysign(math.sqrt(abs(x) + 1) - 1, x) + 1e-3 * x


def test_behaviour_probabilities_of_epsilon_greedy():
    # epsilon 0.4 over 4 actions: 0.1 for each action, plus 0.6 for the greedy one
    mu = epsilon_greedy_probs(np.array([2, 1]), np.array([2, 3]), np.array([0.4, 0.4]), 4)
    assert mu == pytest.approx([0.7, 0.1])


def test_the_embedding_and_rnd_train_on_the_last_transitions_of_each_sequence():
    mask = torch.tensor([[1, 1], [1, 1], [1, 1], [1, 0], [1, 0], [1, 0]], dtype=torch.bool)  # [T=6, B=2]
    chosen = last_transitions(mask, 2)  # [5, 2]: t whose t + 1 is stored too
    assert chosen[:, 0].nonzero().flatten().tolist() == [3, 4]  # 6 steps: transitions 0..4, the last two
    assert chosen[:, 1].nonzero().flatten().tolist() == [0, 1]  # 3 steps: transitions 0 and 1


def test_one_retrace_loss_by_hand():
    """Q = 0 everywhere (heads zeroed), so Q's greedy action is 0, and both steps took it with mu 0.5:
    c = lambda min(1, 1 / 0.5) = lambda. Policy j = 3 of 4: beta_3 = 0.3, its discount 0.95 stored.
    Rewards r = r_e + 0.3 r_i = (1 + 0, 0 + 0.3 * 2) = (1, 0.6); step 1 terminates (discount 0).
      y_1 = h(0.6) = 0.265511
      y_0 = h(1) + gamma_3 c_1 (y_1 - 0) = 0.415214 + 0.95 * 0.95 * 0.265511 = 0.654838
      loss = 0.5 (y_0^2 + y_1^2) / 2 = 0.124827
    """
    cfg = make_config({"env_id": ENV_ID, "num_policies": 4, "gamma": 0.99, "gamma_min": 0.95, "burn_in": 0,
                       "sequence_length": 2, "sequence_overlap": 1, "retrace_lambda": 0.95, "lstm_size": 8,
                       "hidden_size": 8})
    learner = Learner(cfg, (16,), 2, torch.device("cpu"), replay=None, counters=RunCounters(1))
    with torch.no_grad():
        for model in (learner.net, learner.target):
            for layer in (model.q.value, model.q.advantage):
                layer.weight.zero_(), layer.bias.zero_()
    steps, batch = 2, 1
    zeros = lambda *shape: torch.zeros(*shape)  # noqa: E731
    state = LstmState(zeros(batch, 8), zeros(batch, 8))
    extra = torch.tensor([[[0.0, 0.5, 3.0]], [[2.0, 0.5, 3.0]]])  # [T, B, (r_i, mu, j)]
    sequences = DeviceSequences(
        obs=zeros(steps, batch, 16), action=torch.zeros(steps, batch, dtype=torch.int64),
        reward=torch.tensor([[1.0], [0.0]]), discount=torch.tensor([[0.95], [0.0]]),
        mask=torch.ones(steps, batch, dtype=torch.bool), prev_action=torch.zeros(steps, batch, dtype=torch.int64),
        prev_reward=zeros(steps, batch), state=state, next_state=state,
        episode_start=torch.ones(batch, dtype=torch.bool), weight=torch.ones(batch), key=np.zeros(batch, np.int64),
        extra=extra, prev_extra=torch.cat([zeros(1, batch, 3), extra[:-1]]))
    assert betas(4, 0.3)[3] == pytest.approx(0.3)
    loss, priority = learner.retrace_loss(sequences, *learner.q_values(sequences))
    y1 = h(0.6)
    y0 = h(1.0) + 0.95 * 0.95 * y1
    assert (y0, y1) == pytest.approx((0.654838, 0.265511), abs=1e-6)
    assert float(loss.detach()) == pytest.approx(0.5 * (y0 ** 2 + y1 ** 2) / 2, rel=1e-5)
    assert float(priority[0]) == pytest.approx(0.9 * y0 + 0.1 * (y0 + y1) / 2, rel=1e-5)


def test_a_running_actor_stores_what_retrace_and_the_network_need(tmp_path):
    cfg = make_config({"env_id": ENV_ID, "num_workers": 1, "envs_per_actor": 3, "num_policies": 8,
                       "sequence_length": 8, "sequence_overlap": 4, "burn_in": 2, "replay_capacity": 2000,
                       "lstm_size": 8, "hidden_size": 8})
    env = describe_env(ENV_ID)
    replay = SequenceReplay.create(replay_config(cfg, env))
    try:
        params = PublishedParams(make_model(cfg, env.obs_shape, env.num_actions))
        actor = Actor(0, cfg, replay, params, RunCounters(1))
        longest = 0
        for _ in range(400):
            actor.step()
            longest = max(longest, int(actor.intrinsic.memory.sizes.max()))
        for writer in actor.writers:
            writer.flush()
        # the memory holds every observation of the episode so far, past one stored sequence's 8 steps
        assert longest > cfg.sequence_length
        batch = replay.sample(len(replay), 0.0, np.random.default_rng(0))
        assert replay.config.extras == EXTRAS
        intrinsic, mu, policy = np.moveaxis(batch.extra, -1, 0)  # [B, T] each
        mask = batch.mask
        j = policy[:, 0].astype(int)
        assert (policy[mask] == np.repeat(j[:, None], cfg.sequence_length, 1)[mask]).all(), "j holds for a sequence"
        gamma_j = gammas(8, cfg.gamma, cfg.gamma_min)[j]
        discount = batch.discount
        assert np.allclose(np.where(discount > 0, discount, gamma_j[:, None])[mask],
                           np.repeat(gamma_j[:, None], cfg.sequence_length, 1)[mask])
        epsilons = actor.epsilons
        allowed = np.concatenate([epsilons / 2, epsilons / 2 + 1 - epsilons])
        assert np.isclose(mu[mask][:, None], allowed[None]).any(axis=1).all()
        assert (intrinsic[mask] >= 0).all() and intrinsic[mask].max() > 0
        # the previous intrinsic reward of step 0 is the stored one of the step before, in the sequence
        # that overlaps it; at an episode start it is 0
        assert (batch.prev_extra[batch.episode_start, 0] == 0).all()
        assert (batch.prev_extra[~batch.episode_start, 0] > 0).any()
        actor.close()
    finally:
        replay.close()


@pytest.mark.parametrize("train, network", [(ngu.train, ngu.network), (agent57.train, agent57.network)],
                         ids=["ngu", "agent57"])
def test_the_evaluator_keeps_its_intrinsic_reward_across_rounds(train, network):
    """The evaluator calls policy_for once per round on the same refreshed model copy: alpha's error
    statistics must carry over (fresh ones fed the network intrinsic rewards up to 5 times the
    actors', and NGU's greedy j = 0 evaluation on the chain fell from 10 to 0 in most rounds)."""
    cfg = train.make_config({"env_id": ENV_ID, "num_policies": 10, "lstm_size": 8, "hidden_size": 8})
    policy_for = train.evaluation_policy(cfg)
    model = network.make_model(cfg, (16,), 2)
    env = make_env(ENV_ID, 0)
    first, _ = policy_for(model, env)
    first.intrinsic.error_stats.update(np.array([3.0, 4.0]))
    second, _ = policy_for(model, env)
    assert second.intrinsic is first.intrinsic and second.intrinsic.error_stats.count == 2
