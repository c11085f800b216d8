"""Deep Q-Networks and the extensions that make Rainbow, each a switch that composes with the rest.

* DQN (Mnih et al. 2015): replay, target network, epsilon-greedy; Huber or MSE TD loss.
* ``double`` (van Hasselt et al. 2016, arXiv:1509.06461): the online net picks the next action.
* ``n_step`` (Sutton 1988; Hessel et al. 2018): n-step returns assembled at sample time from
  single transitions in replay, cut at episode ends, bootstrapping after truncation only.
* ``distributional`` (C51, Bellemare et al. 2017, arXiv:1707.06887): ``num_atoms`` on
  ``[v_min, v_max]``, projected target, cross-entropy loss.
* ``dueling`` (Wang et al. 2016): ``V + A - mean A``.
* ``noisy`` (Fortunato et al. 2018): factorized Gaussian noisy head; epsilon is then 0.
* ``prioritized`` (Schaul et al. 2016): proportional replay, ``alpha``, ``beta`` annealed from
  ``beta_start`` to 1 over the run, new transitions at max priority.
* ``rainbow`` preset (Hessel et al. 2018, arXiv:1710.02298): everything on.

Units: ``total_steps``, ``learning_starts``, ``target_update_every`` and ``eps_decay_steps``
count env steps summed over the ``num_envs`` envs (agent steps; an Atari agent step is 4
frames).  ``train_every`` counts steps of the vectorised env: one ``update`` is ``train_every``
steps of all ``num_envs`` envs (``num_envs * train_every`` transitions) followed by
``gradient_steps`` gradient steps, skipped with ``lax.cond`` before ``learning_starts``.  With
``num_envs=10, train_every=1`` the agent trains once per 10 env steps (PureJaxRL's
``TRAINING_INTERVAL=10``).

Target network: every ``target_update_every`` env steps, ``target <- tau * online + (1 - tau) * target``
(``tau = 1``: hard sync; set ``target_update_every`` to one update's steps for per-step Polyak).

Performance: parameters, target and Adam moments are single flat vectors (``ravel_pytree``), so
the optimizer and the target update are a few fused ops rather than one op per leaf; replay is
updated in place inside the ``lax.scan`` carry.
"""
from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree

from jaxrl import buffers, losses, returns, rng
from jaxrl.agents.base import Agent, episode_metrics
from jaxrl.buffers import prioritized as prioritized_buffer
from jaxrl.buffers import uniform as uniform_buffer
from jaxrl.config import Config, ConfigError, field
from jaxrl.envs.core import Env, require_discrete
from jaxrl.networks import QNetwork


@dataclasses.dataclass(frozen=True)
class Config(Config):
    num_envs: int = field(10, low=1, help="parallel environments per seed")
    buffer_size: int = field(10_000, low=1, help="replay capacity in transitions (split evenly over envs)")
    batch_size: int = field(128, low=1, help="transitions per gradient step")
    learning_starts: int = field(10_000, low=0, help="env steps before the first gradient step")
    train_every: int = field(1, low=1, help="vectorised env steps per update (num_envs transitions each)")
    gradient_steps: int = field(1, low=1, help="gradient steps per update")
    target_update_every: int = field(500, low=1, help="env steps between target updates")
    tau: float = field(1.0, traced=True, low=0.0, high=1.0, low_open=True,
                       help="target update rate: 1 = hard sync, < 1 = Polyak averaging")
    lr: float = field(2.5e-4, traced=True, low=0.0, low_open=True, help="Adam learning rate")
    anneal_lr: bool = field(True, help="anneal the learning rate linearly to 0 over the run")
    adam_eps: float = field(1e-8, traced=True, low=0.0, low_open=True, help="Adam epsilon")
    max_grad_norm: float = field(10.0, traced=True, low=0.0, help="global grad-norm clip (0: none)")
    gamma: float = field(0.99, traced=True, low=0.0, high=1.0, help="discount")
    eps_start: float = field(1.0, traced=True, low=0.0, high=1.0, help="initial exploration epsilon")
    eps_end: float = field(0.05, traced=True, low=0.0, high=1.0, help="final exploration epsilon")
    eps_decay_steps: int = field(250_000, low=1, help="env steps of the linear epsilon decay")
    n_step: int = field(1, low=1, high=64, help="n-step returns")
    double: bool = field(True, help="double Q-learning targets (on by default: plain DQN is unstable on CartPole)")
    dueling: bool = field(False, help="dueling value/advantage head")
    distributional: bool = field(False, help="C51 distributional head and loss")
    num_atoms: int = field(51, low=2, help="C51 atoms")
    v_min: float = field(0.0, help="C51 support minimum")
    v_max: float = field(100.0, help="C51 support maximum")
    noisy: bool = field(False, help="noisy-net head for exploration (epsilon is 0)")
    prioritized: bool = field(False, help="proportional prioritized replay")
    alpha: float = field(0.6, traced=True, low=0.0, help="priority exponent")
    beta_start: float = field(0.4, traced=True, low=0.0, high=1.0, help="initial IS exponent (annealed to 1)")
    priority_eps: float = field(1e-6, traced=True, low=0.0, help="added to |TD| for priorities")
    loss: str = field("mse", choices=("mse", "huber"), help="TD loss (C51 uses cross-entropy)")
    total_steps: int = field(500_000, low=1, help="env steps per seed")
    hidden: int = field(64, low=1, help="units per hidden layer (MLP torso)")
    layers: int = field(2, low=1, high=8, help="hidden layers (MLP torso)")

    def check(self):
        if self.buffer_size // self.num_envs <= self.n_step:
            raise ConfigError("buffer_size", f"{self.buffer_size} gives {self.buffer_size // self.num_envs} rows per "
                                             f"env, fewer than n_step + 1 = {self.n_step + 1}; raise buffer_size "
                                             f"or lower num_envs")
        if self.batch_size > self.buffer_size:
            raise ConfigError("batch_size", f"{self.batch_size} exceeds buffer_size {self.buffer_size}")
        if self.distributional and self.v_max <= self.v_min:
            raise ConfigError("v_max", f"must exceed v_min ({self.v_min}); got {self.v_max}")
        if self.total_steps < self.num_envs * self.train_every:
            raise ConfigError("total_steps", f"{self.total_steps} is less than one update "
                                             f"(num_envs * train_every = {self.num_envs * self.train_every})")


# Every switch on, n = 3 (Hessel et al. 2018).  The C51 support stays at the config's [v_min, v_max]
# (CartPole scale); on Atari with clipped rewards pass --v-min -10 --v-max 10 as in the paper.
PRESETS = {
    "rainbow": dict(double=True, dueling=True, distributional=True, noisy=True, prioritized=True, n_step=3),
}


class State(NamedTuple):
    params: jax.Array  # flat online parameters
    target: jax.Array  # flat target parameters
    opt_state: Any
    buffer: Any  # ReplayState | PrioritizedState
    env_state: Any
    obs: Any
    key: jax.Array  # uint32[2] threefry key data of the agent's own stream (see jaxrl.rng)
    steps: jax.Array  # env steps so far (all envs)
    grad_steps: jax.Array


def _scan_or_call(f, carry, xs):
    """``lax.scan(f, carry, xs)``; a length-1 loop is inlined (one less loop per update)."""
    if xs.shape[0] == 1:
        carry, out = f(carry, xs[0])
        return carry, jax.tree_util.tree_map(lambda x: x[None], out)
    return jax.lax.scan(f, carry, xs)




def make_agent(config: Config, env: Env) -> Agent:
    config.validate()
    spec = env.spec
    algo = "c51/rainbow (distributional)" if config.distributional else "dqn"
    require_discrete(spec, algo)
    A = spec.action_space.n
    E = config.num_envs
    if spec.num_envs != E:
        raise ConfigError("num_envs", f"config has {E} but the env was made with {spec.num_envs}")
    K = config.num_atoms if config.distributional else 1
    n = config.n_step
    envpool = spec.backend == "envpool"
    image = len(spec.obs_shape) == 3 and spec.obs_shape[0] >= 36
    net = QNetwork(A, (config.hidden,) * config.layers, "nature_cnn" if image else "mlp", config.dueling, K,
                   config.noisy, len(spec.obs_shape))
    atoms = jnp.linspace(config.v_min, config.v_max, K)
    steps_per_update = E * config.train_every
    num_updates = config.total_steps // steps_per_update
    total_grad_steps = max(1, num_updates * config.gradient_steps)

    # ------------------------------------------------------------------ replay layout and memory
    # envpool returns the final observation at the terminal step (obs == final_obs) and ignores
    # the action of the next (reset) step, so the next state is the next row's obs: store obs once.
    # gymnax auto-resets within the step, so the final obs is stored with the transition.
    obs_sd = jax.ShapeDtypeStruct((E,) + tuple(spec.obs_shape), spec.obs_dtype)
    b = jax.ShapeDtypeStruct((E,), jnp.bool_)
    row_spec = {"obs": obs_sd, "action": jax.ShapeDtypeStruct((E,), jnp.int32),
                "reward": jax.ShapeDtypeStruct((E,), jnp.float32), "terminated": b, "truncated": b}
    if not envpool:
        row_spec["next_obs"] = obs_sd
    if not config.prioritized:  # prioritized replay keeps masked transitions out of the sum tree instead
        row_spec["mask"] = jax.ShapeDtypeStruct((E,), jnp.bool_)
    # checked before anything is allocated or compiled
    buffers.check_memory(buffers.memory_bytes(row_spec, config.buffer_size, E, config.prioritized),
                         config.buffer_size, E)
    lag = n  # a transition is sampleable once the n rows after it are written (its window and next obs)
    make_buffer = prioritized_buffer.make if config.prioritized else uniform_buffer.make
    buf = make_buffer(config.buffer_size, E, lag)

    # ------------------------------------------------------------------ flat parameters
    dummy_obs = jnp.zeros(spec.obs_shape, spec.obs_dtype)
    _, unravel = ravel_pytree(jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype),
                                                     jax.eval_shape(net.init, jax.random.key(0), dummy_obs)))

    def apply(flat, obs, key=None):
        rngs = {"noise": key} if (config.noisy and key is not None) else None
        return net.apply(unravel(flat), obs, rngs=rngs)

    def q_of(out):
        """Q values [.., A] from the head output."""
        return (jax.nn.softmax(out, axis=-1) * atoms).sum(-1) if config.distributional else out

    def lr_at(count, hp):
        return hp["lr"] * (1.0 - count / total_grad_steps) if config.anneal_lr else hp["lr"]

    def make_tx(hp):
        adam = optax.adam(lambda c: lr_at(c, hp), eps=hp["adam_eps"])
        return optax.chain(optax.clip_by_global_norm(jnp.where(hp["max_grad_norm"] > 0, hp["max_grad_norm"],
                                                                jnp.inf)), adam)

    def epsilon(steps, hp):
        if config.noisy:
            return jnp.zeros((), jnp.float32)
        frac = jnp.minimum(steps.astype(jnp.float32) / config.eps_decay_steps, 1.0)
        return hp["eps_start"] + frac * (hp["eps_end"] - hp["eps_start"])

    def beta(steps, hp):
        frac = jnp.minimum(steps.astype(jnp.float32) / config.total_steps, 1.0)
        return hp["beta_start"] + frac * (1.0 - hp["beta_start"])

    def init(key, hp):
        k_net, k_env, k_state = jax.random.split(key, 3)
        params = net.init({"params": k_net, "noise": k_net}, dummy_obs)
        flat, _ = ravel_pytree(params)
        env_state, ts = env.reset(k_env)
        example = jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), row_spec)
        z = jnp.zeros((), jnp.int32)
        key = jax.random.bits(k_state, (2,), jnp.uint32)
        return State(flat, flat, make_tx(hp).init(flat), buf.init(example), env_state, ts.obs, key, z, z)

    # All randomness of one update comes from ONE threefry draw (jaxrl.rng): per env step
    # 2 * E words (epsilon, random action) + 4 (env key) + 4 (noise key); per gradient step
    # B words (replay sampling) + 8 (two noise keys); + 2 for the next key.  Keys handed to code
    # we do not own (env.step, flax noise) are raw threefry keys made from two of those words.
    env_words, grad_words = 2 * E + 8, config.batch_size + 8

    # ------------------------------------------------------------------ acting
    def env_step(carry, bits, hp):
        params, buffer, env_state, obs, steps = carry
        q = q_of(apply(params, obs, rng.key_from_words(bits[2 * E + 4:]) if config.noisy else None))
        eps = epsilon(steps, hp)
        explore = rng.uniform(bits[:E]) < eps
        random_action = (bits[E:2 * E] % A).astype(jnp.int32)
        action = jnp.where(explore, random_action, jnp.argmax(q, -1)).astype(jnp.int32)
        env_state, ts = env.step(env_state, action, rng.key_from_words(bits[2 * E:]))
        row = {"obs": obs, "action": action, "reward": ts.reward, "terminated": ts.terminated,
               "truncated": ts.truncated}
        valid = ~ts.info["reset_step"] if "reset_step" in ts.info else jnp.ones((E,), bool)
        if not envpool:
            row["next_obs"] = ts.final_obs
        if config.prioritized:
            buffer = buf.add(buffer, row, valid, hp["alpha"])
        else:
            row["mask"] = valid
            buffer = buf.add(buffer, row)
        metrics = episode_metrics(ts)
        metrics["q_mean"] = q.mean()
        return (params, buffer, env_state, ts.obs, steps + E), metrics

    # ------------------------------------------------------------------ learning
    def sample_batch(buffer, bits, hp, steps):
        idx = buf.sample(buffer, bits, config.batch_size, beta(steps, hp)) if config.prioritized else \
            buf.sample(buffer, bits, config.batch_size)
        w = uniform_buffer.window(buffer, idx.t, idx.env, n, ("reward", "terminated", "truncated"))
        ret, disc, last = returns.n_step_window(w["reward"], w["terminated"], w["truncated"], hp["gamma"])
        first = uniform_buffer.gather(buffer, idx.t, idx.env, 0, ("obs", "action") if config.prioritized else
                                      ("obs", "action", "mask"))
        if envpool:
            next_obs = uniform_buffer.gather(buffer, idx.t, idx.env, last + 1, ("obs",))["obs"]
        else:
            next_obs = uniform_buffer.gather(buffer, idx.t, idx.env, last, ("next_obs",))["next_obs"]
        weight = idx.weight if config.prioritized else first["mask"].astype(jnp.float32)
        return idx, first["obs"], first["action"], ret, disc, next_obs, weight

    def loss_fn(params, target, batch, keys, hp, out_next_online):
        obs, action, ret, disc, next_obs, weight = batch
        k_online, k_target = keys
        out = apply(params, obs, k_online)
        out_next = apply(target, next_obs, k_target)
        selector = q_of(out_next_online) if config.double else q_of(out_next)
        chosen = losses.select_action_values(out, action)
        if config.distributional:
            target_p = returns.categorical_q_target(atoms, ret, disc, out_next, selector)
            per = losses.categorical_cross_entropy(chosen, target_p)
            loss = (per * weight).mean()
            priority = per
            q_pred = (jax.nn.softmax(chosen, -1) * atoms).sum(-1)
        else:
            y = returns.double_q_target(ret, disc, out_next, selector) if config.double else \
                returns.q_target(ret, disc, out_next)
            td = y - chosen
            loss = losses.td_loss(td, weight, config.loss)
            priority = jnp.abs(td)
            q_pred = chosen
        return loss, (jax.lax.stop_gradient(priority), jax.lax.stop_gradient(q_pred))

    def grad_step(carry, bits, hp):
        params, target, opt_state, buffer, steps, grad_steps = carry
        B = config.batch_size
        keys = (rng.key_from_words(bits[B:]), rng.key_from_words(bits[B + 4:])) if config.noisy else (None, None)
        idx, *batch = sample_batch(buffer, bits[:B], hp, steps)
        # Double-Q: the online net picks a' at s'. Outside the differentiated function, so the
        # backward pass covers the batch at s only.
        out_next_online = apply(params, batch[4], keys[0]) if config.double else None
        (loss, (priority, q_pred)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            params, target, batch, keys, hp, out_next_online)
        updates, opt_state = make_tx(hp).update(grads, opt_state, params)
        params = params + updates
        if config.prioritized:
            buffer = buf.update_priorities(buffer, idx, priority + hp["priority_eps"], hp["alpha"])
        stats = {"loss": loss, "q_pred": q_pred.mean(), "grad_norm": jnp.sqrt((grads * grads).sum()),
                 "lr": lr_at(grad_steps, hp)}
        return (params, target, opt_state, buffer, steps, grad_steps + 1), stats

    stat_keys = ("loss", "q_pred", "grad_norm", "lr")

    def learn(carry, bits, hp):
        carry, stats = _scan_or_call(lambda c, x: grad_step(c, x, hp), carry, bits)
        return carry, {k: v.mean() for k, v in stats.items()}

    def skip(carry, bits, hp):
        return carry, {k: jnp.zeros((), jnp.float32) for k in stat_keys}

    def update(state: State, hp):
        T, G = config.train_every, config.gradient_steps
        bits = rng.threefry_bits(state.key, 2 + T * env_words + G * grad_words)
        key = bits[:2]
        env_bits = bits[2:2 + T * env_words].reshape(T, env_words)
        grad_bits = bits[2 + T * env_words:].reshape(G, grad_words)
        carry = (state.params, state.buffer, state.env_state, state.obs, state.steps)
        carry, ep = _scan_or_call(lambda c, x: env_step(c, x, hp), carry, env_bits)
        params, buffer, env_state, obs, steps = carry
        _, ready = uniform_buffer.sampleable_rows(buffer, buf.rows, buf.lag)
        learning = (steps >= config.learning_starts) & (ready > 0)
        lcarry = (params, state.target, state.opt_state, buffer, steps, state.grad_steps)
        lcarry, stats = jax.lax.cond(learning, learn, skip, lcarry, grad_bits, hp)
        params, target, opt_state, buffer, _, grad_steps = lcarry
        # target update when this update crossed a multiple of target_update_every
        sync = (steps // config.target_update_every) > (state.steps // config.target_update_every)
        mix = jnp.where(sync & learning, hp["tau"], 0.0)
        target = target + mix * (params - target)
        metrics = {k: v.sum() for k, v in ep.items() if k != "q_mean"}
        metrics.update(stats)
        metrics["q_mean"] = ep["q_mean"].mean()
        metrics["epsilon"] = epsilon(state.steps, hp)
        metrics["learning"] = learning.astype(jnp.float32)
        if config.prioritized:
            metrics["beta"] = beta(steps, hp)
        return State(params, target, opt_state, buffer, env_state, obs, key, steps, grad_steps), metrics

    def act(state: State, obs):
        """Greedy action for evaluation: argmax of Q (noisy layers at their mean weights)."""
        return jnp.argmax(q_of(apply(state.params, obs, None)), -1).astype(jnp.int32)

    return Agent(config, init, update, num_updates, steps_per_update, act=act)
