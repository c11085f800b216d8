"""The off-policy core: act -> store -> sample -> learn as one compiled ``update``.

An off-policy algorithm (DQN and its Rainbow switches; DDPG, TD3, SAC, D4PG) is a
:class:`Learner`, a set of pure functions over its own state (networks, optimizer states, anything
else), plus a config that subclasses :class:`Config`. :func:`make_agent` turns it into an
:class:`~jaxrl.core.agent.Agent`. The core owns everything else:

* **acting**: ``train_every`` steps of the ``num_envs`` envs per update, actions from
  ``learner.act`` (the exploration policy), whose per-env exploration state (Ornstein-Uhlenbeck
  noise, say) is reset where an episode ended;
* **replay**: uniform or proportional prioritized (:mod:`jaxrl.buffers`), time-major per env, with
  n-step windows assembled at sample time (cut at episode ends; terminated windows do not bootstrap,
  truncated ones do). How the next observation is stored follows the env layer: an env that resets in
  the same step (gymnax) reports ``final_obs``, which is stored; one that resets on the following step
  (envpool, flagged by ``ts.info["reset_step"]``) has the next observation in the next row, and its
  reset rows are never sampled;
* **learning**: ``gradient_steps`` calls of ``learner.learn`` per update on sampled :class:`Batch`es,
  skipped (``lax.cond``) until ``learning_starts`` env steps and a full n-step window exist;
  prioritized replay's importance weights (``beta`` annealed to 1 over the run) and the new
  priorities that ``learn`` returns;
* **target networks**: ``learner.target_of(learner_state)`` names the parameters that have a target
  copy; whenever an update crosses a multiple of ``target_update_every`` env steps the copy moves by
  ``tau`` (``optax.incremental_update``: ``tau = 1`` is a hard copy, ``tau < 1`` Polyak averaging);
* **randomness**: one threefry draw per update, sliced per env step and gradient step
  (:mod:`jaxrl.rng`), far cheaper on CPU than many small draws; a learner declares how many uint32
  words its ``act`` and ``learn`` need (``jaxrl.rng.uniform`` / ``key_from_words`` turn them into
  uniforms or keys);
* **observation normalisation** (``normalize_obs``): running mean and variance of every observation
  acted on, kept in the state (:mod:`jaxrl.core.running_stats`); the learner only ever sees
  normalised observations (``act``, sampled batches, ``greedy``) while replay keeps the raw ones;
* **metrics**: finished episodes, the mean of ``act``'s and ``learn``'s metrics, ``learning``
  (1 once gradient steps run) and ``beta`` (prioritized replay).

Units: ``total_steps``, ``learning_starts`` and ``target_update_every`` count env steps summed over
the ``num_envs`` envs; ``train_every`` counts steps of the vectorised env.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import optax

from jaxrl import returns, rng
from jaxrl.buffers import prioritized as prioritized_buffer
from jaxrl.buffers import uniform as uniform_buffer
from jaxrl.config import Config as BaseConfig
from jaxrl.config import ConfigError, field
from jaxrl.core import exploration, running_stats
from jaxrl.core.agent import Agent, episode_stats, reset_where, zeros_like_shape
from jaxrl.core.optim import crossed, polyak

KEY_WORDS = 2  # uint32 words of a raw threefry key (jaxrl.rng.key_from_words)
random_actions, random_words = exploration.random_actions, exploration.random_words  # uniform warm-up actions


@dataclasses.dataclass(frozen=True)
class Config(BaseConfig):
    """The fields every off-policy algorithm shares (same names and meanings in each)."""

    num_envs: int = field(1, low=1, help="parallel environments per seed")
    total_steps: int = field(100_000, low=1, help="env steps per seed")
    buffer_size: int = field(100_000, low=1, help="replay capacity in transitions (split evenly over envs)")
    batch_size: int = field(256, low=1, help="transitions per gradient step")
    learning_starts: int = field(1_000, low=0, help="env steps before the first gradient step")
    train_every: int = field(1, low=1, help="vectorised env steps per update (num_envs transitions each)")
    gradient_steps: int = field(1, low=1, help="gradient steps per update")
    target_update_every: int = field(1, low=1, help="env steps between target updates")
    tau: float = field(0.005, traced=True, low=0.0, high=1.0, low_open=True,
                       help="target update rate: 1 = hard copy, < 1 = Polyak averaging")
    gamma: float = field(0.99, traced=True, low=0.0, high=1.0, help="discount")
    n_step: int = field(1, low=1, high=64, help="n-step returns")
    prioritized: bool = field(False, help="proportional prioritized replay")
    alpha: float = field(0.6, traced=True, low=0.0, help="priority exponent (prioritized replay)")
    beta_start: float = field(0.4, traced=True, low=0.0, high=1.0,
                              help="initial importance-sampling exponent, annealed to 1 (prioritized replay)")
    priority_eps: float = field(1e-6, traced=True, low=0.0, help="added to new priorities")
    normalize_obs: bool = field(False, help="normalise observations by their running mean and variance (kept in "
                                            "the state)")

    def check(self):
        rows = self.buffer_size // self.num_envs
        if rows <= self.n_step:
            raise ConfigError("buffer_size", f"{self.buffer_size} gives {rows} rows per env, fewer than n_step + 1 = "
                                             f"{self.n_step + 1}; raise buffer_size or lower num_envs")
        if self.batch_size > self.buffer_size:
            raise ConfigError("batch_size", f"{self.batch_size} exceeds buffer_size {self.buffer_size}; lower "
                                            f"batch_size or raise buffer_size")
        per_update = self.num_envs * self.train_every
        if self.total_steps < per_update:
            raise ConfigError("total_steps", f"{self.total_steps} is less than one update (num_envs * train_every "
                                             f"= {per_update}); raise total_steps")
        run = self.num_updates * per_update  # the env steps the run takes (whole updates)
        if self.learning_starts >= run:
            raise ConfigError("learning_starts", f"{self.learning_starts} is not below the {run} env steps the run "
                                                 f"takes: it would never learn; lower it")
        first = max(1, -(-self.learning_starts // per_update)) * per_update  # steps at the first learning update
        next_sync = ((first - per_update) // self.target_update_every + 1) * self.target_update_every
        if next_sync > run:
            raise ConfigError("target_update_every", f"{self.target_update_every} env steps: no target update "
                                                     f"would happen between learning_starts and the end of the "
                                                     f"run ({run} env steps); lower it")

    @property
    def steps_per_update(self) -> int:
        return self.num_envs * self.train_every

    @property
    def num_updates(self) -> int:
        return self.total_steps // self.steps_per_update


class Batch(NamedTuple):
    """A sampled batch of n-step transitions, ``B = batch_size`` rows.

    The learning target of a row is ``reward + discount * V(next_obs)``.
    """

    obs: Any  # [B, *obs_shape]: the state the action was taken in
    action: jax.Array  # [B] int32 (discrete) or [B, A] float32 (continuous)
    reward: jax.Array  # [B] discounted sum of up to n rewards, cut at the episode end
    discount: jax.Array  # [B] gamma^k after k steps; 0 when the window terminated
    next_obs: Any  # [B, *obs_shape]: the state the window reached
    weight: jax.Array  # [B] importance-sampling weight (prioritized) or 1; 0 for a row never to learn from


class Learner(NamedTuple):
    """An off-policy algorithm: pure functions over its own state ``L`` (a pytree).

    init(key, hp) -> L
    act(L, obs [E, ...], explore, rand uint32[act_words], steps, hp) -> (action [E, ...], explore, metrics)
        the exploration policy; ``explore`` is the per-env exploration state (``explore_init``),
        ``steps`` the env steps done so far (for schedules); ``action`` is stored in replay, and the
        env receives ``to_env(action)``.
    learn(L, target, batch, rand uint32[learn_words], hp) -> (L, metrics, priority [B])
        one gradient step; ``target`` is the target copy of ``target_of(L)`` (``None`` without one);
        ``priority`` feeds prioritized replay (``|TD|`` or a loss per row; ignored otherwise).
    greedy(L, obs [n, ...]) -> action [n, ...]: the deterministic policy for evaluation (env actions).
    """

    init: Callable
    act: Callable
    learn: Callable
    greedy: Callable
    target_of: Optional[Callable] = None  # L -> the parameters that have a target copy
    explore_init: Callable = lambda num_envs: ()  # per-env exploration state, leaves [num_envs, ...]
    to_env: Callable = lambda action: action  # stored action -> env action
    act_words: int = 0
    learn_words: int = 0


class State(NamedTuple):
    learner: Any  # the learner's state: networks, optimizer states, ...
    target: Any  # target copies of learner.target_of(learner), or () without target networks
    explore: Any  # per-env exploration state
    buffer: Any  # ReplayState | PrioritizedState
    env_state: Any
    obs: Any
    key: jax.Array  # uint32[2] threefry key data of the agent's own stream (jaxrl.rng)
    steps: jax.Array  # env steps so far (all envs)
    grad_steps: jax.Array
    obs_stats: Any = ()  # running_stats.RunningStats with normalize_obs, else ()


def scan_or_call(f, carry, xs):
    """``lax.scan(f, carry, xs)`` over the leading axis of ``xs``; a length-1 loop is inlined."""
    if xs.shape[0] == 1:
        carry, out = f(carry, xs[0])
        return carry, jax.tree_util.tree_map(lambda x: x[None], out)
    return jax.lax.scan(f, carry, xs)


def replay_row_spec(spec, next_obs: bool, mask: bool) -> dict:
    """ShapeDtypeStructs of one replay row (one transition per env) for an env spec."""
    E = spec.num_envs
    obs = jax.ShapeDtypeStruct((E,) + tuple(spec.obs_shape), spec.obs_dtype)
    if spec.discrete:
        action = jax.ShapeDtypeStruct((E,), jnp.int32)
    else:
        action = jax.ShapeDtypeStruct((E,) + tuple(spec.action_space.shape), jnp.float32)
    b = jax.ShapeDtypeStruct((E,), jnp.bool_)
    row = {"obs": obs, "action": action, "reward": jax.ShapeDtypeStruct((E,), jnp.float32), "terminated": b,
           "truncated": b}
    if next_obs:
        row["next_obs"] = obs
    if mask:
        row["mask"] = b
    return row


def _resets_next_step(env) -> bool:
    """The env auto-resets on the step after an episode ends (it reports ``info["reset_step"]``)."""
    _, ts = jax.eval_shape(env.reset, jax.random.PRNGKey(0))
    return "reset_step" in ts.info


class Parts(NamedTuple):
    """The static pieces of an off-policy agent, shared by the functions below."""

    config: Config
    env: Any
    learner: Learner
    buf: Any  # the replay buffer's functions (jaxrl.buffers)
    row_spec: dict  # ShapeDtypeStructs of one replay row
    next_step: bool  # the env resets on the step after an episode ends (envpool)


def beta_at(config: Config, steps, hp):
    """Prioritized replay's importance exponent: ``beta_start`` annealed linearly to 1 over the run."""
    return optax.linear_schedule(hp["beta_start"], 1.0, config.total_steps)(steps)


def act_and_store(parts: Parts, ls, hp, carry, bits):
    """One step of all envs: act (exploration policy), step, reset per-env exploration state, store."""
    learner, E = parts.learner, parts.config.num_envs
    explore, buffer, env_state, obs, steps, stats = carry
    if parts.config.normalize_obs:
        stats = running_stats.update(stats, obs)
    action, explore, act_metrics = learner.act(ls, normalized(parts, stats, obs), explore, bits[:learner.act_words],
                                               steps, hp)
    env_state, ts = parts.env.step(env_state, learner.to_env(action), rng.key_from_words(bits[learner.act_words:]))
    explore = reset_where(ts.done, explore, learner.explore_init(E))
    row = {"obs": obs, "action": action, "reward": ts.reward, "terminated": ts.terminated, "truncated": ts.truncated}
    valid = ~ts.info["reset_step"] if parts.next_step else jnp.ones((E,), bool)
    if not parts.next_step:
        row["next_obs"] = ts.final_obs
    if parts.config.prioritized:
        buffer = parts.buf.add(buffer, row, valid, hp["alpha"])
    else:
        buffer = parts.buf.add(buffer, dict(row, mask=valid))
    episodes = {k: v.sum() for k, v in episode_stats(ts).items()}
    return (explore, buffer, env_state, ts.obs, steps + E, stats), (episodes, act_metrics)


def normalized(parts: Parts, stats, obs):
    """``obs`` as the learner sees it: normalised with ``normalize_obs``, else as it is."""
    return running_stats.normalize(stats, obs) if parts.config.normalize_obs else obs


def sample(parts: Parts, buffer, bits, steps, hp, stats=()):
    """A :class:`Batch` of n-step transitions and its replay indices (for new priorities); observations
    normalised with ``stats`` under ``normalize_obs``."""
    config, buf, B, n = parts.config, parts.buf, parts.config.batch_size, parts.config.n_step
    if config.prioritized:
        idx = buf.sample(buffer, bits, B, beta_at(config, steps, hp))
    else:
        idx = buf.sample(buffer, bits, B)
    w = uniform_buffer.window(buffer, idx.t, idx.env, n, ("reward", "terminated", "truncated"))
    ret, disc, last = returns.n_step_window(w["reward"], w["terminated"], w["truncated"], hp["gamma"])
    first = uniform_buffer.gather(buffer, idx.t, idx.env, 0, ("obs", "action") if config.prioritized else
                                  ("obs", "action", "mask"))
    if parts.next_step:
        next_obs = uniform_buffer.gather(buffer, idx.t, idx.env, last + 1, ("obs",))["obs"]
    else:
        next_obs = uniform_buffer.gather(buffer, idx.t, idx.env, last, ("next_obs",))["next_obs"]
    weight = idx.weight if config.prioritized else first["mask"].astype(jnp.float32)
    return idx, Batch(normalized(parts, stats, first["obs"]), first["action"], ret, disc,
                      normalized(parts, stats, next_obs), weight)


def learn(parts: Parts, carry, target, steps, bits, hp, stats):
    """``gradient_steps`` steps of ``learner.learn`` on sampled batches; metrics averaged over them."""
    B = parts.config.batch_size

    def grad_step(c, x):
        ls, buffer = c
        idx, batch = sample(parts, buffer, x[:B], steps, hp, stats)
        ls, metrics, priority = parts.learner.learn(ls, target, batch, x[B:], hp)
        if parts.config.prioritized:
            buffer = parts.buf.update_priorities(buffer, idx, priority + hp["priority_eps"], hp["alpha"])
        return (ls, buffer), metrics

    carry, metrics = scan_or_call(grad_step, carry, bits)
    return carry, {k: v.mean() for k, v in metrics.items()}


def init(parts: Parts, key, hp) -> State:
    learner, E = parts.learner, parts.config.num_envs
    k_learn, k_env, k_state = jax.random.split(key, 3)
    ls = learner.init(k_learn, hp)
    target = learner.target_of(ls) if learner.target_of is not None else ()
    env_state, ts = parts.env.reset(k_env)
    z = jnp.zeros((), jnp.int32)
    stats = running_stats.init(parts.env.spec.obs_shape) if parts.config.normalize_obs else ()
    return State(ls, target, learner.explore_init(E), parts.buf.init(zeros_like_shape(parts.row_spec)), env_state,
                 ts.obs, jax.random.bits(k_state, (KEY_WORDS,), jnp.uint32), z, z, stats)


def update(parts: Parts, state: State, hp):
    """``train_every`` steps of every env, then (from ``learning_starts`` on) the gradient steps and the
    target update. All randomness comes from one draw."""
    config, learner = parts.config, parts.learner
    T, G = config.train_every, config.gradient_steps
    env_words, grad_words = learner.act_words + KEY_WORDS, config.batch_size + learner.learn_words
    bits = rng.threefry_bits(state.key, KEY_WORDS + T * env_words + G * grad_words)
    env_bits = bits[KEY_WORDS:KEY_WORDS + T * env_words].reshape(T, env_words)
    grad_bits = bits[KEY_WORDS + T * env_words:].reshape(G, grad_words)
    carry = (state.explore, state.buffer, state.env_state, state.obs, state.steps, state.obs_stats)
    carry, (ep, act_metrics) = scan_or_call(lambda c, x: act_and_store(parts, state.learner, hp, c, x), carry,
                                            env_bits)
    explore, buffer, env_state, obs, steps, obs_stats = carry
    _, ready = uniform_buffer.sampleable_rows(buffer, parts.buf.rows, parts.buf.lag)
    learning = (steps >= config.learning_starts) & (ready > 0)
    target = state.target if learner.target_of is not None else None
    run = lambda c: learn(parts, c, target, steps, grad_bits, hp, obs_stats)  # noqa: E731
    skip = zeros_like_shape(jax.eval_shape(run, (state.learner, buffer))[1])
    (ls, buffer), stats = jax.lax.cond(learning, run, lambda c: (c, skip), (state.learner, buffer))
    new_target = state.target
    if learner.target_of is not None:
        sync = crossed(state.steps, steps, config.target_update_every) & learning
        new_target = polyak(learner.target_of(ls), state.target, jnp.where(sync, hp["tau"], 0.0))
    metrics = {k: v.sum() for k, v in ep.items()}
    metrics.update({k: v.mean() for k, v in act_metrics.items()})
    metrics.update(stats)
    metrics["learning"] = learning.astype(jnp.float32)
    if config.prioritized:
        metrics["beta"] = beta_at(config, steps, hp)
    grad_steps = state.grad_steps + jnp.where(learning, G, 0)
    return State(ls, new_target, explore, buffer, env_state, obs, bits[:KEY_WORDS], steps, grad_steps,
                 obs_stats), metrics


def make_agent(config: Config, env, learner: Learner) -> Agent:
    """The :class:`~jaxrl.core.agent.Agent` of an off-policy ``learner`` on ``env``."""
    config.validate()
    spec = env.spec
    if spec.num_envs != config.num_envs:
        raise ConfigError("num_envs", f"config has {config.num_envs} but the env was made with {spec.num_envs}")
    next_step = _resets_next_step(env)
    if config.normalize_obs and not jnp.issubdtype(spec.obs_dtype, jnp.floating):
        raise ConfigError("normalize_obs", f"{spec.env_id} has {spec.obs_dtype} observations; normalisation is "
                                           f"for real-valued ones: drop --normalize-obs")
    make_buffer = prioritized_buffer.make if config.prioritized else uniform_buffer.make
    buf = make_buffer(config.buffer_size, config.num_envs, config.n_step)  # sampleable once its window is written
    parts = Parts(config, env, learner, buf, replay_row_spec(spec, not next_step, not config.prioritized), next_step)

    def act(state: State, obs, key=None):
        return learner.greedy(state.learner, normalized(parts, state.obs_stats, obs))

    return Agent(config, lambda key, hp: init(parts, key, hp), lambda state, hp: update(parts, state, hp), act,
                 config.num_updates, config.steps_per_update)

