"""A user's own environment, as a user would write it: each step the observation shows (one-hot)
which of ``num_actions`` actions pays reward 1 this step; episodes last 20 steps.

Optimal return: 20.  Random play: 20 / num_actions (6.67 with 3 actions).  Used by
``tests/test_custom_env.py`` and shown in ``docs/variants.md``.
"""
import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment, spaces

import jaxrl.envs as envs


@struct.dataclass
class EnvState(environment.EnvState):
    signal: jax.Array  # the action that pays this step
    time: int


@struct.dataclass
class EnvParams(environment.EnvParams):
    max_steps_in_episode: int = 20  # the base class's is_truncated: time >= this


class SignalEnv(environment.Environment):
    """The gymnax-style kind (shown in docs/variants.md): ``--env-option num_actions=2`` sets ``n``."""

    def __init__(self, num_actions: int = 3):  # --env-option num_actions=2
        super().__init__()
        self.n = num_actions

    @property
    def default_params(self):
        return EnvParams()

    def reset_env(self, key, params):
        state = EnvState(signal=jax.random.randint(key, (), 0, self.n), time=0)
        return jax.nn.one_hot(state.signal, self.n), state

    def step_env(self, key, state, action, params):
        reward = (action == state.signal).astype(jnp.float32)
        state = EnvState(signal=jax.random.randint(key, (), 0, self.n), time=state.time + 1)
        return jax.nn.one_hot(state.signal, self.n), state, reward, jnp.array(False), {}

    def action_space(self, params):
        return spaces.Discrete(self.n)

    def observation_space(self, params):
        return spaces.Box(0.0, 1.0, (self.n,), jnp.float32)


def signal_factory(num_envs, num_actions=3, episode_steps=20):
    """The factory kind: the same task written directly against jaxrl's batched interface."""
    spec = envs.EnvSpec(env_id="signal", num_envs=num_envs, obs_shape=(num_actions,), obs_dtype=jnp.float32,
                        action_space=envs.Discrete(num_actions), max_episode_steps=episode_steps)

    def observe(signal, time):
        return jax.nn.one_hot(signal, num_actions), (signal, time)

    def reset(key):
        obs, inner = observe(jax.random.randint(key, (num_envs,), 0, num_actions), jnp.zeros(num_envs, jnp.int32))
        stats = envs.EpisodeStats.zeros(num_envs)
        z = jnp.zeros(num_envs, bool)
        ts = envs.TimeStep(obs, jnp.zeros(num_envs), z, z, obs, z, stats.last_return, stats.last_length, {})
        return (inner, stats), ts

    def step(state, action, key):
        (signal, time), stats = state
        reward = (action == signal).astype(jnp.float32)
        time = time + 1
        truncated = time >= episode_steps  # auto-reset: the new episode starts from the signal drawn now
        obs, inner = observe(jax.random.randint(key, (num_envs,), 0, num_actions), jnp.where(truncated, 0, time))
        stats = stats.update(reward, truncated)
        z = jnp.zeros(num_envs, bool)
        ts = envs.TimeStep(obs, reward, z, truncated, obs, truncated, stats.last_return, stats.last_length, {})
        return (inner, stats), ts

    return envs.Env(spec, reset, step)
