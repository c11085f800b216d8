"""Greedy/deterministic evaluation episodes, compiled, for every agent that provides ``Agent.act``.

An agent supplies only its greedy policy (:class:`jaxrl.core.agent.Agent`)::

    act(state, obs[num_envs, *obs_shape], key) -> action[num_envs, ...]   (ready for env.step: argmax,
                                                                          or the clipped Gaussian mean)

and :func:`make_evaluate` turns it into ``evaluate(state, key) -> returns[num_episodes]``: reset a
separate evaluation env of ``num_episodes`` copies, step all of them with ``act`` in a
``lax.while_loop`` until every copy has finished its first episode (or ``max_steps`` steps), and
return each episode's undiscounted return.  The training env state is not touched, and the key is
separate from the agent's key, so turning evaluation on or off never changes training.

Evaluation measures the true task: on envpool Atari the evaluation env is made with
``episodic_life=False, reward_clip=False`` (a full game, unclipped score).  An episode still
running after ``max_steps`` counts with the return it has so far.
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from jaxrl.config import ConfigError

DEFAULT_MAX_STEPS = 10_000  # when the env declares no episode limit



def make_eval_env(env_id: str, num_episodes: int, batch: int, env_options: dict):
    """The evaluation env: ``num_episodes`` copies (per batch member for envpool), with the backend's
    true-task options (``Backend.eval_options``: envpool Atari plays full games, unclipped)."""
    from jaxrl import envs

    backend, name = envs.resolve(env_id)
    opts = {**env_options, **backend.eval_options(name)}
    return envs.make(env_id, num_envs=num_episodes, num_seeds=batch, **opts)


def check_epsilon(epsilon: float) -> None:
    """A one-line :class:`ConfigError` unless ``0 <= epsilon <= 1`` (epsilon-greedy evaluation)."""
    if not 0.0 <= epsilon <= 1.0:
        raise ConfigError("epsilon", f"must be in [0, 1]; got {epsilon}")


def make_evaluate(env, agent, max_steps: int | None = None, epsilon: float = 0.0) -> Callable:
    """``evaluate(state, key) -> returns [env.spec.num_envs]``: one greedy episode per env copy.

    ``epsilon > 0`` (discrete actions only) replaces each env's action by a uniform random one with that
    probability, every step: the epsilon-greedy evaluation of the Atari protocols (Mnih et al. 2015: 0.05),
    which keeps a greedy policy in a deterministic env from repeating one loop for the whole episode.

    ``agent`` is an :class:`~jaxrl.core.agent.Agent` (its ``act``, and ``act_carry`` for a recurrent
    policy, whose memory is carried from step to step) or a bare ``act(state, obs, key)`` function.
    An agent that plans with a two-player game's rules (``Agent.act_game``, on an env with ``env.game``)
    is evaluated by :func:`make_game_evaluate` instead: greedy self-play would say nothing.
    """
    if plays_games(env, agent):
        if epsilon:
            raise ConfigError("epsilon", "a game player is scored by games against a random player, with no "
                                         "epsilon: leave --epsilon at 0")
        return make_game_evaluate(env.game, agent, env.spec.num_envs)
    act = getattr(agent, "act", agent)
    act_carry = getattr(agent, "act_carry", None)
    limit = int(max_steps or env.spec.max_episode_steps or DEFAULT_MAX_STEPS)
    n = env.spec.num_envs
    if epsilon:
        check_epsilon(epsilon)
        if not env.spec.discrete:
            raise ConfigError("epsilon", f"epsilon-greedy evaluation needs discrete actions; {env.spec.env_id} "
                                         "has continuous ones: leave --epsilon at 0")
        num_actions = env.spec.action_space.n

    def evaluate(state, key):
        k_reset, k_run = jax.random.split(key)
        env_state, ts = env.reset(k_reset)
        memory = act_carry(state, n) if act_carry is not None else ()

        def cond(carry):
            t, _, _, _, active, _, _ = carry
            return (t < limit) & active.any()

        def body(carry):
            t, env_state, obs, memory, active, ret, key = carry
            key, k_act, k_step = jax.random.split(key, 3)
            if act_carry is not None:
                action, memory = act(state, obs, k_act, memory)
            else:
                action = act(state, obs, k_act)
            if epsilon:
                k_act, k_coin, k_rand = jax.random.split(k_act, 3)
                random_action = jax.random.randint(k_rand, action.shape, 0, num_actions).astype(action.dtype)
                action = jnp.where(jax.random.uniform(k_coin, action.shape) < epsilon, random_action, action)
            env_state, ts = env.step(env_state, action, k_step)
            ret = ret + jnp.where(active, ts.reward, 0.0)
            return t + 1, env_state, ts.obs, memory, active & ~ts.done, ret, key

        carry = (jnp.zeros((), jnp.int32), env_state, ts.obs, memory, jnp.ones((n,), bool),
                 jnp.zeros((n,), jnp.float32), k_run)
        return jax.lax.while_loop(cond, body, carry)[5]

    return evaluate


def plays_games(env, agent) -> bool:
    """Whether ``agent`` is evaluated by games against a random player (:func:`make_game_evaluate`): it plans
    with a two-player game's rules (``Agent.act_game``) and ``env`` gives them (``env.game``)."""
    return getattr(env, "game", None) is not None and getattr(agent, "act_game", None) is not None


def make_game_evaluate(game, agent, games: int) -> Callable:
    """``evaluate(state, key) -> outcomes [games]`` (``games`` rounded up to even): the agent
    (``Agent.act_game``, e.g. AlphaZero's search) against a uniformly random player, half of the games
    with each colour; each outcome is +1 / 0 / -1 from the agent's view, so their mean is the win rate
    minus the loss rate (the curve ``jaxrl plot --metric eval_return`` draws for game players)."""
    from jaxrl.core import games as G
    from jaxrl.envs.pgx_report import agent_player

    n = games + games % 2

    def evaluate(state, key):
        me = agent_player(agent, game, state)
        return G.play_match(game, me, G.random_player(game), n, key).astype(jnp.float32)

    return evaluate


def backend_report(env_id: str, env_options: dict, agent, state, **options) -> dict:
    """The env backend's own evaluation of the batch ``state`` (:class:`jaxrl.envs.registry.Report`: the
    trading env's profit against baselines) as the keys to add to a summary: ``{backend name: dict}``, plus
    the dict's ``Report.promote`` keys at the top level; ``{}`` when the backend has none.  ``options`` go
    to ``Report.run`` (``out``, and ``jaxrl eval``'s backend options)."""
    from jaxrl import envs

    backend, name = envs.resolve(env_id)
    if backend.report is None:
        return {}
    result = backend.report.run(name, dict(env_options), agent, state, **options)
    return {backend.name: result, **{k: result[k] for k in backend.report.promote if k in result}}


def report_lines(env_id: str, results: dict) -> list[str]:
    """The terminal lines (``Report.text``) of the backend report in ``results`` (a summary), if any."""
    from jaxrl import envs

    backend, _ = envs.resolve(env_id)
    if backend.report is None or backend.name not in results:
        return []
    return list(backend.report.text(results[backend.name]))
