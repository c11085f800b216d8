"""Shared pieces of the episode-based agents (REINFORCE, CEM, ES, GA, tabular methods).

Whole episodes inside one compiled program: :func:`rollout_episodes` resets a batch of envs and
runs a ``lax.scan`` of a fixed ``max_steps`` steps.  An env that has finished keeps stepping
(the env layer auto-resets it) but its steps are masked out, so every episode is a prefix of the
scan.  Shapes are static: the cost of one batch is always ``max_steps * num_envs`` env steps,
whatever the episode lengths.  An episode still running after ``max_steps`` is cut there and
counted as finished (``cut``); set ``max_steps`` to the env's own limit (the default everywhere)
and no episode is cut.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, ClassVar, NamedTuple, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxrl.config import Config, ConfigError, field
from jaxrl.envs.core import EnvSpec
from jaxrl.networks.mlp import ACTIVATIONS


@dataclasses.dataclass(frozen=True)
class IterationConfig(Config):
    """The budget of an algorithm that counts iterations (batches of episodes, generations).

    Give ``iterations`` or ``total_steps`` (env steps per seed, as for every algorithm), not both;
    with neither, ``default_iterations``.
    """

    iterations: int = field(0, low=0, help="updates per seed (0: from total_steps, else the default)")
    total_steps: int = field(0, low=0, help="env steps per seed, instead of iterations (0: use iterations)")
    default_iterations: ClassVar[int] = 100

    def check(self):
        if self.iterations and self.total_steps:
            raise ConfigError("total_steps", f"give total_steps or iterations, not both (got {self.total_steps} "
                                             f"and {self.iterations})")

    def num_updates(self, steps_per_update: int) -> int:
        """Updates per seed for a given number of env steps per update."""
        if self.iterations:
            return self.iterations
        if self.total_steps:
            if self.total_steps < steps_per_update:
                raise ConfigError("total_steps", f"{self.total_steps} is less than one update ({steps_per_update} "
                                                 f"env steps); raise total_steps")
            return self.total_steps // steps_per_update
        return self.default_iterations


class Episodes(NamedTuple):
    """A batch of whole episodes, time-major. ``T = max_steps``, ``N = num_envs``.

    obs [T, N, *obs_shape]: the observation acted on at t.   action [T, N].   reward [T, N].
    next_obs [T, N, *obs_shape]: the observation the step reached (``final_obs``, before auto-reset).
    mask [T, N] bool: step t belongs to the episode (False after it ended).
    terminated [T, N] bool: the episode reached a terminal state at t (within the mask).
    done [T, N] bool: the episode's last step is t (terminated, truncated, or cut at ``T``).
    ret [N]: undiscounted return.   length [N] int32: number of steps.
    """

    obs: Any
    action: jax.Array
    reward: jax.Array
    next_obs: Any
    mask: jax.Array
    terminated: jax.Array
    done: jax.Array
    ret: jax.Array
    length: jax.Array


def episode_limit(spec: EnvSpec, max_steps: int, field: str = "max_steps") -> int:
    """``max_steps``, or the env's own episode limit when it is 0; a one-line error if neither exists."""
    if max_steps > 0:
        return max_steps
    if not spec.max_episode_steps:
        raise ConfigError(field, f"{spec.env_id} has no episode limit; set {field} to a positive number")
    return int(spec.max_episode_steps)


def rollout_episodes(env, act: Callable, key, max_steps: int) -> Episodes:
    """Play one episode in each of ``env.spec.num_envs`` envs, from reset, for at most ``max_steps`` steps.

    act(obs [N, *obs_shape], key) -> action [N, ...]   (closes over the policy parameters)
    """
    k_reset, k_run = jax.random.split(key)
    env_state, ts = env.reset(k_reset)
    n = env.spec.num_envs

    def step(carry, k):
        env_state, obs, alive = carry
        k_act, k_env = jax.random.split(k)
        action = act(obs, k_act)
        env_state, ts = env.step(env_state, action, k_env)
        out = (obs, action, ts.reward * alive, ts.final_obs, alive, ts.terminated & alive, ts.done & alive)
        return (env_state, ts.obs, alive & ~ts.done), out

    carry = (env_state, ts.obs, jnp.ones((n,), bool))
    (_, _, alive), (obs, action, reward, next_obs, mask, term, done) = jax.lax.scan(
        step, carry, jax.random.split(k_run, max_steps))
    done = done.at[-1].set(done[-1] | alive)  # cut at max_steps: the episode ends there
    return Episodes(obs, action, reward, next_obs, mask, term, done, reward.sum(0), mask.sum(0).astype(jnp.int32))


# ---- observations --------------------------------------------------------------------------

def discrete_obs_size(spec: EnvSpec, override: int = 0, field: str = "num_states") -> int:
    """Number of states of an env with integer (tabular) observations, or 0 for vector observations.

    Read from the env spec (``spec.obs_num_states``: the size of a discrete observation space, so
    FrozenLake 4x4 gives 16 and ``map_name='8x8'`` gives 64).  ``override`` (the config's
    ``num_states``) is needed only when the env does not report the size; when it does, a
    different ``override`` is a one-line :class:`ConfigError` naming ``field``.
    """
    import numpy as np

    known = int(spec.obs_num_states or 0)
    if spec.obs_shape != () or not np.issubdtype(np.dtype(spec.obs_dtype), np.integer):
        if override > 0:
            raise ConfigError(field, f"{spec.env_id} has observations of shape {spec.obs_shape} and dtype "
                                     f"{np.dtype(spec.obs_dtype)}, not integer states; leave {field} at 0")
        return 0
    if known and override > 0 and override != known:
        raise ConfigError(field, f"{spec.env_id} has {known} states (with these env options) but {field} = "
                                 f"{override}; set {field} to {known} or leave it at 0 to infer it")
    if known or override > 0:
        return known or override
    raise ConfigError(field, f"{spec.env_id} has integer observations of unknown range; set {field}")


def tabular_sizes(spec: EnvSpec, num_states: int, algo: str) -> tuple[int, int]:
    """(states, actions) of a tabular method's env, or a one-line ConfigError naming what is wrong."""
    from jaxrl.envs.core import require_discrete

    require_discrete(spec, algo)
    n = discrete_obs_size(spec, num_states)
    if not n:
        raise ConfigError("env", f"{algo} needs integer (tabular) observations; {spec.env_id} has "
                                 f"observations of shape {spec.obs_shape}")
    return n, spec.action_space.n


def encode_obs(obs, num_states: int, obs_ndim: int):
    """Float features of a batch of observations.

    obs [*B, *obs_shape] -> [*B, F]: one-hot when ``num_states`` > 0 (integer observations,
    ``obs_shape == ()``), else the ``obs_ndim`` trailing dims flattened.
    """
    if num_states:
        return jax.nn.one_hot(obs, num_states)
    lead = obs.shape[: obs.ndim - obs_ndim]
    return obs.reshape(lead + (-1,)).astype(jnp.float32)


class PolicyMLP(nn.Module):
    """Policy network of the black-box and cross-entropy agents: an MLP from features to logits
    (discrete) or to a mean in ``[-1, 1]`` (continuous: tanh).  LeCun-normal init, zero bias: no
    LAPACK, safe to vmap over a population.

    ``__call__(features [..., F]) -> [..., A]``.
    """

    action_dim: int
    hidden: Sequence[int] = (64,)
    activation: str = "tanh"
    continuous: bool = False

    @nn.compact
    def __call__(self, x):
        act = ACTIVATIONS[self.activation]
        for h in self.hidden:
            x = act(nn.Dense(h)(x))
        out = nn.Dense(self.action_dim)(x)
        return jnp.tanh(out) if self.continuous else out


def deterministic_action(spec: EnvSpec):
    """out [N, A] of :class:`PolicyMLP` -> env action [N, ...]: argmax, or the mean scaled to the box."""
    if spec.discrete:
        return lambda out: jnp.argmax(out, -1)
    low = jnp.asarray(spec.action_space.low).reshape(-1)
    high = jnp.asarray(spec.action_space.high).reshape(-1)
    shape = tuple(spec.action_space.shape)

    def scale(out):
        a = low + 0.5 * (out + 1.0) * (high - low)
        return a.reshape(out.shape[:-1] + shape)

    return scale


def action_dim(spec: EnvSpec) -> int:
    return spec.action_space.n if spec.discrete else spec.action_space.dim


# ---- black-box (population) agents -----------------------------------------------------------

class FlatPolicy(NamedTuple):
    """A :class:`PolicyMLP` seen as a flat parameter vector, for ES and GA.

    init(key) -> theta [D];   act(theta [D], obs [N, *obs_shape]) -> deterministic env action [N, ...]
    """

    dim: int
    init: Callable
    act: Callable


def flat_policy(spec: EnvSpec, hidden: Sequence[int], activation: str, num_states: int = 0) -> FlatPolicy:
    from jax.flatten_util import ravel_pytree

    n_states = discrete_obs_size(spec, num_states)
    net = PolicyMLP(action_dim(spec), tuple(hidden), activation, continuous=not spec.discrete)
    feat = lambda obs: encode_obs(obs, n_states, len(spec.obs_shape))  # noqa: E731
    dummy = feat(jnp.zeros((1,) + spec.obs_shape, spec.obs_dtype))
    theta0, unravel = ravel_pytree(net.init(jax.random.PRNGKey(0), dummy))
    to_action = deterministic_action(spec)

    def init(key):
        return ravel_pytree(net.init(key, dummy))[0]

    def act(theta, obs):
        return to_action(net.apply(unravel(theta), feat(obs)))

    return FlatPolicy(int(theta0.size), init, act)


def evaluate_population(env, policy: FlatPolicy, thetas, keys, max_steps: int):
    """Play ``env.spec.num_envs`` episodes with each of ``P`` parameter vectors, as one ``jax.vmap``.

    thetas [P, D], keys [P, 2] (members given the same key see the same episodes: common random
    numbers) -> (returns [P, E], lengths [P, E]).
    """

    def one(theta, key):
        ep = rollout_episodes(env, lambda obs, _: policy.act(theta, obs), key, max_steps)
        return ep.ret, ep.length

    return jax.vmap(one)(thetas, keys)


def play_episodes(env, act: Callable, key, max_steps: int, num_episodes: int) -> Episodes:
    """``num_episodes`` episodes (a multiple of ``env.spec.num_envs``) as a vmap of :func:`rollout_episodes`
    over groups of ``num_envs``; every field gets a leading ``[num_episodes // num_envs]`` axis."""
    n = env.spec.num_envs
    if num_episodes % n:
        raise ConfigError("test_episodes", f"{num_episodes} is not a multiple of num_envs = {n}")
    keys = jax.random.split(key, num_episodes // n)
    return jax.vmap(lambda k: rollout_episodes(env, act, k, max_steps))(keys)
