"""Proximal Policy Optimization (Schulman et al. 2017, arXiv:1707.06347).

Discrete (categorical) and continuous (diagonal Gaussian, state-independent log-std) policies,
GAE(lambda), clipped surrogate, clipped value loss, entropy bonus, global grad-norm clipping,
optional linear learning-rate annealing, epochs over shuffled minibatches.

One ``update`` = a rollout of ``num_steps`` steps in ``num_envs`` envs, then ``num_epochs`` x
``num_minibatches`` gradient steps; the rollout, the advantages and the minibatch loop are the
on-policy core (:mod:`jaxrl.core.onpolicy`), so this file is the network, the loss and the config.

``memory="gru"|"lstm"``: recurrent PPO. A GRU or LSTM cell sits between the torso and the heads
(:mod:`jaxrl.networks.recurrent`); its state is the agent state's ``memory`` (carried from rollout
to rollout, reset for each env whose episode ended, saved in checkpoints). Minibatches are whole env
sequences (``num_envs`` must divide by ``num_minibatches``), each replayed from the memory stored at
its first step, with the memory reset where an episode began. Greedy evaluation carries the memory
(``Agent.act_carry``). docs/variants.md walks through the threading.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from jaxrl import losses
from jaxrl.config import Config, ConfigError, field
from jaxrl.core import onpolicy
from jaxrl.core.agent import Agent, explained_variance
from jaxrl.core.optim import optimizer, schedule
from jaxrl.networks import ActorCritic
from jaxrl.networks.distributions import head_for
from jaxrl.networks.recurrent import make_recurrent
from jaxrl.networks.torsos import check_nature_cnn, pixel_frames


@dataclasses.dataclass(frozen=True)
class Config(Config):
    num_envs: int = field(4, low=1, help="parallel environments per seed")
    num_steps: int = field(128, low=1, help="rollout length per env per update")
    num_epochs: int = field(4, low=1, help="passes over each rollout")
    num_minibatches: int = field(4, low=1, help="minibatches per epoch")
    lr: float = field(2.5e-4, traced=True, low=0.0, low_open=True, help="Adam learning rate")
    gamma: float = field(0.99, traced=True, low=0.0, high=1.0, help="discount")
    gae_lambda: float = field(0.95, traced=True, low=0.0, high=1.0, help="GAE lambda")
    clip_eps: float = field(0.2, traced=True, low=0.0, help="surrogate clip range")
    ent_coef: float = field(0.01, traced=True, low=0.0, help="entropy bonus coefficient")
    vf_coef: float = field(0.5, traced=True, low=0.0, help="value loss coefficient")
    max_grad_norm: float = field(0.5, traced=True, low=0.0, low_open=True, help="global grad-norm clip")
    anneal_lr: bool = field(True, help="anneal the learning rate linearly to 0")
    total_steps: int = field(500_000, low=1, help="env steps per seed")
    hidden: int = field(64, low=1, help="units per hidden layer")
    layers: int = field(2, low=1, high=8, help="hidden layers in actor and critic")
    activation: str = field("tanh", choices=("tanh", "relu", "gelu"), help="hidden activation")
    torso: str = field("auto", choices=("auto", "mlp", "nature_cnn"),
                       help="network torso; auto = Nature CNN for uint8 image observations, else MLP")
    memory: str = field("none", choices=("none", "gru", "lstm"),
                        help="recurrent PPO: a GRU or LSTM cell of `hidden` units between a one-layer torso "
                             "and heads of layers - 1 hidden layers; minibatches are whole env sequences")

    def check(self):
        batch = self.num_envs * self.num_steps
        if self.memory != "none" and self.num_envs % self.num_minibatches:
            raise ConfigError("num_minibatches", f"recurrent PPO splits minibatches over envs: num_envs = "
                                                 f"{self.num_envs} is not divisible by num_minibatches = "
                                                 f"{self.num_minibatches}; change one of them")
        if batch % self.num_minibatches:
            raise ConfigError("num_minibatches", f"num_envs * num_steps = {batch} is not divisible by "
                                                 f"num_minibatches = {self.num_minibatches}; change one of them")
        if batch // self.num_minibatches < 2:
            raise ConfigError("num_minibatches", f"{self.num_minibatches} minibatches of num_envs * num_steps = "
                                                 f"{batch} rows leave {batch // self.num_minibatches} row per "
                                                 f"minibatch: normalised advantages would all be 0; use at most "
                                                 f"{batch // 2} minibatches")
        if self.total_steps < batch:
            raise ConfigError("total_steps", f"{self.total_steps} is less than one rollout "
                                             f"(num_envs * num_steps = {batch}); raise total_steps")


class State(NamedTuple):
    params: Any  # flax parameters of the actor-critic
    opt_state: Any
    env_state: Any
    obs: Any
    memory: Any  # the recurrent state of each env ([num_envs, hidden] leaves); () without memory
    key: jax.Array
    update: jax.Array  # updates done so far


STATS = ("loss", "policy_loss", "value_loss", "entropy", "approx_kl", "clip_frac")


def ppo_loss(params, mb, hp, apply: Callable, head):
    """PPO loss on one minibatch whose advantages are already normalised.

    mb: ``(inputs, action, old_logp, old_value, adv, target)``, leaves ``[M, ...]`` (``[T, M, ...]``
    for whole sequences); ``apply(params, inputs) -> (dist, value)`` (inputs: observations, or a
    recurrent policy's ``(obs, first memory, starts)``).
    Returns ``(loss, stats[6])`` in the order of :data:`STATS`: one stacked vector instead of six
    scalars keeps the per-step bookkeeping to one write.
    """
    inputs, action, old_logp, old_value, adv, target = mb
    dist, value = apply(params, inputs)
    logp = head.log_prob(dist, action)
    pg_loss, ratio = losses.ppo_clip_loss(logp, old_logp, adv, hp["clip_eps"])
    v_loss = losses.clipped_value_loss(value, old_value, target, hp["clip_eps"])
    ent = head.entropy(dist).mean()
    total = pg_loss + hp["vf_coef"] * v_loss - hp["ent_coef"] * ent
    diag = jnp.stack([(ratio - 1.0) - (logp - old_logp),
                      (jnp.abs(ratio - 1.0) > hp["clip_eps"]).astype(jnp.float32)]).reshape(2, -1).mean(-1)
    return total, jnp.concatenate([jnp.stack([total, pg_loss, v_loss, ent]), diag])


class Nets(NamedTuple):
    """The actor-critic as PPO uses it (``memory`` is ``()`` for a feed-forward network).

    init(key) -> params;  init_memory(n) -> memory;  head: the PolicyHead
    apply(params, inputs) -> (dist, value): the loss's forward pass on a minibatch
    step(params, obs [N, ...], memory) -> (dist, value [N], memory): one rollout step
    policy(params, obs, memory) -> (dist, memory): greedy evaluation (no critic)
    value(params, obs [..., *obs_shape], memory) -> V [...]: bootstrapping (no actor)
    """

    init: Callable
    init_memory: Callable
    head: Any
    apply: Callable
    step: Callable
    policy: Callable
    value: Callable


def _torso(config, spec) -> str:
    """``config.torso`` with ``auto`` resolved for ``spec`` (a one-line error for frames too small for the CNN)."""
    torso = config.torso
    if torso == "auto":
        torso = "nature_cnn" if pixel_frames(spec) else "mlp"
    if torso == "nature_cnn":
        check_nature_cnn(spec, "mlp")
    return torso


def actor_critic(config, spec):
    """The feed-forward network, the policy head, and one-sided views of the same parameters (ACKTR uses it too).

    Returns ``(net, head, apply(params, obs) -> (dist, value), policy_only(params, obs) -> dist,
    value_only(params, obs, memory=()) -> value)``.
    """
    continuous = not spec.discrete
    head = head_for(spec.action_space)
    args = (head.action_dim, continuous, (config.hidden,) * config.layers, config.activation, len(spec.obs_shape),
            _torso(config, spec))
    nets = {h: ActorCritic(*args, heads=h) for h in ("both", "policy", "value")}

    def dist(out):
        return (out[0], out[2]) if continuous else out[0]

    def apply(params, obs):
        out = nets["both"].apply(params, obs)
        return dist(out), out[1]

    def policy_only(params, obs):
        return dist(nets["policy"].apply(params, obs))

    def value_only(params, obs, memory=()):
        return nets["value"].apply(params, obs)[1]

    return nets["both"], head, apply, policy_only, value_only


def networks(config: Config, spec) -> Nets:
    """PPO's network for ``spec``: :func:`actor_critic`, or a recurrent one (``config.memory``)."""
    obs0 = jnp.zeros(spec.obs_shape, spec.obs_dtype)
    if config.memory == "none":
        net, head, apply, policy_only, value_only = actor_critic(config, spec)
        return Nets(lambda key: net.init(key, obs0), lambda n: (), head, apply,
                    lambda params, obs, memory: (*apply(params, obs), memory),
                    lambda params, obs, memory: (policy_only(params, obs), memory), value_only)
    continuous = not spec.discrete
    head = head_for(spec.action_space)
    rnn = make_recurrent(head.action_dim, continuous, config.hidden, config.layers, config.activation,
                         len(spec.obs_shape), _torso(config, spec), config.memory)

    def dist(out):
        return (out[0], out[2]) if continuous else out[0]

    def apply_seq(params, inputs):
        obs, first, starts = inputs  # first: leaves [1, M, H], the memory before each sequence
        out = rnn.unroll(params, obs, jax.tree_util.tree_map(lambda m: m[0], first), starts)
        return dist(out), out[1]

    def rnn_step(params, obs, memory):
        out, memory = rnn.step(params, obs, memory)
        return dist(out), out[1], memory

    def rnn_policy(params, obs, memory):
        out, memory = rnn.step(params, obs, memory, "policy")
        return dist(out), memory

    return Nets(lambda key: rnn.init(key, obs0), rnn.init_memory, head, apply_seq, rnn_step, rnn_policy,
                lambda params, obs, memory: rnn.step(params, obs, memory, "value")[0][1])


def sequences(traj: onpolicy.Transition):
    """A recurrent policy's loss inputs ``(obs [T, N], memory [1, N], starts [T, N])``: each env's sequence
    replays from the memory stored at its first step, reset before every step that began an episode."""
    starts = jnp.concatenate([jnp.zeros_like(traj.done[:1]), traj.done[:-1]])
    return traj.obs, jax.tree_util.tree_map(lambda m: m[:1], traj.memory), starts


def make_agent(config: Config, env) -> Agent:
    config.validate()
    spec = env.spec
    nets = networks(config, spec)
    head, recurrent = nets.head, config.memory != "none"
    batch = config.num_envs * config.num_steps
    num_updates = config.total_steps // batch
    grad_steps = num_updates * config.num_epochs * config.num_minibatches
    policy = onpolicy.Policy(lambda p, obs, memory, noise: nets.step(p, obs, memory), head, nets.value,
                             nets.init_memory)
    norm_axes = (-2, -1) if recurrent else -1  # a minibatch's advantages: [T, envs] sequences or [rows]

    def tx(hp):
        return optimizer(hp["lr"], total_steps=grad_steps, anneal=config.anneal_lr,
                         max_grad_norm=hp["max_grad_norm"], eps=1e-5)

    def init(key, hp):
        params, env_state, obs, k_state, n = onpolicy.start(key, env, nets.init)
        return State(params, tx(hp).init(params), env_state, obs, nets.init_memory(config.num_envs), k_state, n)

    def update(state: State, hp):
        key, k_roll, k_perm = jax.random.split(state.key, 3)
        env_state, obs, memory, traj, ep = onpolicy.rollout(env, policy, state.params, state.env_state, state.obs,
                                                            state.memory, k_roll, config.num_steps)
        adv, target = onpolicy.advantages(traj, onpolicy.bootstrap_values(policy, state.params, traj),
                                          hp["gamma"], hp["gae_lambda"])
        inputs = sequences(traj) if recurrent else traj.obs
        mbs = onpolicy.minibatches(k_perm, (inputs, traj.action, traj.logp, traj.value, adv, target),
                                   config.num_epochs, config.num_minibatches, by_env=recurrent)
        mbs = mbs[:4] + (onpolicy.normalize(mbs[4], norm_axes),) + mbs[5:]  # per minibatch, outside the steps
        params, opt_state, stats = onpolicy.sgd(lambda p, mb: ppo_loss(p, mb, hp, nets.apply, head), tx(hp),
                                                state.params, state.opt_state, mbs)
        metrics = dict(zip(STATS, stats.mean(0)))
        metrics.update(ep)
        metrics["explained_variance"] = explained_variance(traj.value, target)
        count = state.update * config.num_epochs * config.num_minibatches
        metrics["lr"] = schedule(hp["lr"], grad_steps, config.anneal_lr)(count)
        return State(params, opt_state, env_state, obs, memory, key, state.update + 1), metrics

    def act(state: State, obs, key=None, memory=()):
        """Greedy action: argmax of the logits, or the Gaussian mean clipped to the action box.
        With memory: ``act(state, obs, key, memory) -> (action, memory)``."""
        dist, memory = nets.policy(state.params, obs, memory)
        action = head.to_env(head.mode(dist))
        return (action, memory) if recurrent else action

    return Agent(config, init, update, act, num_updates, batch,
                 act_carry=(lambda state, n: nets.init_memory(n)) if recurrent else None)
