"""PQN: parallel Q-learning (Gallici et al. 2024, "Simplifying Deep Temporal Difference Learning", arXiv:2407.04811).

Q-learning with no replay buffer and no target network. One ``update`` = a rollout of ``num_steps``
steps in ``num_envs`` envs acting epsilon-greedily on the online Q-network (the on-policy core's
rollout, :mod:`jaxrl.core.onpolicy`), then Q(lambda) targets computed backwards over the rollout from
the same network (:func:`jaxrl.returns.q_lambda`; a truncated episode bootstraps from the state it
reached), then ``num_epochs`` x ``num_minibatches`` gradient steps on ``0.5 (Q(s, a) - G)^2`` over
shuffled transitions. LayerNorm after every hidden layer (``layer_norm``, on by default) is what keeps
this stable without a target network. Epsilon decays linearly from ``eps_start`` to ``eps_end`` over the
first ``eps_decay`` fraction of ``total_steps``; the optimizer is RAdam (as in the paper) or Adam.
The defaults are the CartPole-v1 settings of ``tests/test_pqn.py`` (solved in 250k steps);
``experiments/pqn_*.json`` hold others.
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxrl.config import Config, ConfigError, field
from jaxrl.core import onpolicy
from jaxrl.core.agent import Agent
from jaxrl.core.optim import optimizer, schedule
from jaxrl.envs.core import require_discrete
from jaxrl.networks.distributions import PolicyHead
from jaxrl.networks.init import orthogonal
from jaxrl.networks.layer_norm import LayerNorm
from jaxrl.networks.torsos import NatureCNN, flatten_obs
from jaxrl.returns import q_lambda, select_action_values


@dataclasses.dataclass(frozen=True)
class Config(Config):
    num_envs: int = field(32, low=1, help="parallel environments per seed")
    num_steps: int = field(64, low=1, help="rollout length per env per update")
    total_steps: int = field(500_000, low=1, help="env steps per seed")
    num_epochs: int = field(4, low=1, help="passes over each rollout")
    num_minibatches: int = field(16, low=1, help="minibatches per epoch")
    lr: float = field(1e-3, traced=True, low=0.0, low_open=True, help="learning rate")
    anneal_lr: bool = field(True, help="anneal the learning rate linearly to 0")
    optimizer: str = field("radam", choices=("radam", "adam"), help="RAdam (as in the paper) or Adam")
    max_grad_norm: float = field(10.0, traced=True, low=0.0, low_open=True, help="global grad-norm clip")
    gamma: float = field(0.99, traced=True, low=0.0, high=1.0, help="discount")
    q_lambda: float = field(0.65, traced=True, low=0.0, high=1.0, help="lambda of the Q(lambda) returns")
    eps_start: float = field(1.0, traced=True, low=0.0, high=1.0, help="initial exploration epsilon")
    eps_end: float = field(0.01, traced=True, low=0.0, high=1.0, help="final exploration epsilon")
    eps_decay: float = field(0.1, traced=True, low=0.0, high=1.0, low_open=True,
                             help="fraction of total_steps over which epsilon decays linearly")
    layer_norm: bool = field(True, help="LayerNorm after every hidden layer of the Q-network")
    torso: str = field("auto", choices=("auto", "mlp", "nature_cnn"),
                       help="auto = Nature CNN for uint8 image observations, else MLP")
    hidden: int = field(64, low=1, help="units per hidden layer")
    layers: int = field(2, low=1, high=8, help="hidden layers (after the CNN, if any)")

    def check(self):
        batch = self.num_envs * self.num_steps
        if batch % self.num_minibatches:
            raise ConfigError("num_minibatches", f"num_envs * num_steps = {batch} is not divisible by "
                                                 f"num_minibatches = {self.num_minibatches}; change one of them")
        if self.total_steps < batch:
            raise ConfigError("total_steps", f"{self.total_steps} is less than one rollout "
                                             f"(num_envs * num_steps = {batch}); raise total_steps")


class QNet(nn.Module):
    """obs ``[..., *obs_shape]`` -> Q ``[..., A]``: (Nature CNN ->) Dense -> [LayerNorm] -> ReLU, ``hidden`` times.

    The LayerNorm is :class:`jaxrl.networks.layer_norm.LayerNorm`: ``nn.LayerNorm``'s parameters and
    bit-identical forward, with a closed-form backward that takes fewer kernels on CPU."""

    action_dim: int
    hidden: Sequence[int] = (128, 128)
    layer_norm: bool = True
    obs_ndim: int = 1
    torso: str = "mlp"

    @nn.compact
    def __call__(self, obs):
        x = NatureCNN()(obs) if self.torso == "nature_cnn" else flatten_obs(obs, self.obs_ndim)
        for h in self.hidden:
            x = nn.Dense(h, kernel_init=orthogonal(np.sqrt(2)))(x)
            x = nn.relu(LayerNorm()(x) if self.layer_norm else x)
        return nn.Dense(self.action_dim, kernel_init=orthogonal(1.0))(x)


State = onpolicy.State


def epsilon_greedy(action_dim: int) -> PolicyHead:
    """The rollout's head: ``dist = (Q [N, A], epsilon)``; noise ``[..., 2]`` uniforms (explore?, which action)."""
    def sample(dist, u):
        q, eps = dist
        random = jnp.minimum((u[..., 1] * action_dim).astype(jnp.int32), action_dim - 1)
        return jnp.where(u[..., 0] < eps, random, q.argmax(-1).astype(jnp.int32))

    def zeros(dist, *_):
        return jnp.zeros(dist[0].shape[:-1])

    return PolicyHead("epsilon_greedy", action_dim, lambda key, prefix: jax.random.uniform(key, (*prefix, 2)),
                      sample, lambda dist, u: (sample(dist, u), zeros(dist)), zeros, zeros,
                      lambda dist: dist[0].argmax(-1).astype(jnp.int32), lambda a: a)


def pqn_loss(params, mb, apply):
    """``0.5 (Q(s, a) - G)^2`` on one minibatch ``(obs [M, ...], action [M], G [M])``; stats (loss, mean Q(s, a))."""
    obs, action, target = mb
    q = select_action_values(apply(params, obs), action)
    loss = 0.5 * jnp.mean((q - target) ** 2)
    return loss, jnp.stack([loss, q.mean()])


def bootstrap_q(q_fn, traj, last_obs, max_episode_steps=None):
    """``max_a Q(s'_t, a)`` ``[T, N]`` of the observation each transition reached (before auto-reset).

    ``traj.value`` ``[T, N]`` already holds ``max_a Q(s_t, a)`` from acting, and ``s'_t = s_{t+1}``
    unless the episode ended at ``t``, so the bootstrap is ``traj.value`` shifted by one step, with
    ``last_obs`` ``[N, ...]`` (the observation after the rollout) for the last step. Where an episode
    ended it differs: a terminated transition does not bootstrap (its value is unused), and a truncated
    one needs ``Q(final_obs_t)``. An env truncates only at its time limit ``max_episode_steps``, so a
    rollout holds at most ``N * ceil(T / max_episode_steps)`` truncations: those rows of ``final_obs``
    (found with a fixed-size ``nonzero``) and ``last_obs`` go through ``q_fn`` in one pass of
    ``N + N * ceil(T / limit)`` rows instead of ``T * N``. Without a known time limit (or when that
    is no smaller) it is one pass over all of ``traj.final_obs``. The values equal that pass up to
    float rounding (the shifted ones come from the acting passes); an env that truncates more often
    than its time limit allows gets NaN targets, which the driver's NaN guard reports.
    """
    T, N = traj.reward.shape
    slots = N * -(-T // max_episode_steps) if max_episode_steps else T * N
    if slots + N >= T * N:
        return q_fn(traj.final_obs).max(-1)
    truncated = (traj.done & ~traj.terminated).reshape(-1)
    idx = jnp.nonzero(truncated, size=slots, fill_value=0)[0]
    final_obs = traj.final_obs.reshape((T * N,) + traj.final_obs.shape[2:])
    q = q_fn(jnp.concatenate([last_obs, final_obs[idx]])).max(-1)
    shifted = jnp.concatenate([traj.value[1:], q[None, :N]]).reshape(-1)
    boot = jnp.where(truncated, shifted.at[idx].set(q[N:]), shifted)
    # more truncations than the time limit allows (an env that truncates otherwise): NaN, which the
    # driver's guard reports (metric "target"), rather than silently wrong targets
    return jnp.where(truncated.sum() > slots, jnp.nan, boot).reshape(T, N)


def epsilon(config: Config, steps, hp):
    """Exploration epsilon after ``steps`` env steps (linear decay over ``eps_decay * total_steps``)."""
    frac = jnp.clip(steps / (hp["eps_decay"] * config.total_steps), 0.0, 1.0)
    return hp["eps_start"] + frac * (hp["eps_end"] - hp["eps_start"])


def make_agent(config: Config, env) -> Agent:
    config.validate()
    spec = env.spec
    require_discrete(spec, "pqn")
    torso = config.torso
    if torso == "auto":
        torso = "nature_cnn" if (len(spec.obs_shape) == 3 and spec.obs_dtype == np.uint8) else "mlp"
    if torso == "nature_cnn" and (len(spec.obs_shape) != 3 or min(spec.obs_shape[:2]) < 36):
        raise ConfigError("torso", f"nature_cnn needs image observations of at least 36x36xC; "
                                   f"{spec.env_id} gives {spec.obs_shape}; use --torso mlp")
    action_dim = spec.action_space.n
    net = QNet(action_dim, (config.hidden,) * config.layers, config.layer_norm, len(spec.obs_shape), torso)
    batch = config.num_envs * config.num_steps
    num_updates = config.total_steps // batch
    grad_steps = num_updates * config.num_epochs * config.num_minibatches

    def q_values(params, obs):
        return net.apply(params, obs)

    # the rollout's "params" are (params, epsilon); its value is max_a Q (reported as q_max)
    def step(p_eps, obs, memory, noise):
        q = q_values(p_eps[0], obs)
        return (q, p_eps[1]), q.max(-1), memory

    policy = onpolicy.Policy(step, epsilon_greedy(action_dim), lambda p_eps, obs, memory=(): q_values(p_eps[0], obs))

    def tx(hp):
        return optimizer(hp["lr"], total_steps=grad_steps, anneal=config.anneal_lr,
                         max_grad_norm=hp["max_grad_norm"], kind=config.optimizer)

    def init(key, hp):
        params, env_state, obs, k_state, n = onpolicy.start(
            key, env, lambda k: net.init(k, jnp.zeros(spec.obs_shape, spec.obs_dtype)))
        return State(params, tx(hp).init(params), env_state, obs, k_state, n)

    def update(state: State, hp):
        key, k_roll, k_perm = jax.random.split(state.key, 3)
        eps = epsilon(config, state.update * batch, hp)
        env_state, obs, _, traj, ep = onpolicy.rollout(env, policy, (state.params, eps), state.env_state, state.obs,
                                                       (), k_roll, config.num_steps)
        next_q = bootstrap_q(lambda o: q_values(state.params, o), traj, obs, spec.max_episode_steps)
        target = q_lambda(traj.reward, next_q, traj.terminated, traj.done, hp["gamma"], hp["q_lambda"])
        mbs = onpolicy.minibatches(k_perm, (traj.obs, traj.action, target), config.num_epochs,
                                   config.num_minibatches)
        params, opt_state, stats = onpolicy.sgd(lambda p, mb: pqn_loss(p, mb, q_values), tx(hp), state.params,
                                                state.opt_state, mbs)
        loss, q_taken = stats.mean(0)
        metrics = dict(ep, loss=loss, q_taken=q_taken, q_max=traj.value.mean(), target=target.mean(), epsilon=eps)
        count = state.update * config.num_epochs * config.num_minibatches
        metrics["lr"] = schedule(hp["lr"], grad_steps, config.anneal_lr)(count)
        return State(params, opt_state, env_state, obs, key, state.update + 1), metrics

    def act(state: State, obs, key=None):
        """Greedy action: argmax of Q."""
        return q_values(state.params, obs).argmax(-1).astype(jnp.int32)

    return Agent(config, init, update, act, num_updates, batch)
