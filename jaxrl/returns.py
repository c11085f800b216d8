"""Returns and advantage estimators, as batched functions over time-major arrays.

Shapes use ``T`` for time and ``N`` for any number of trailing batch dims (envs, seeds).
Unlike rlax, which is unbatched by design, these take the batch directly: a reverse
``lax.scan`` over ``T`` with ``[N]`` vectors in the carry is one fused loop, not a vmap of
``N`` loops. Tests compare them with rlax.

Episode ends follow the jaxrl convention: ``terminated`` stops bootstrapping, ``done``
(terminated or truncated) stops the recursion; ``next_values[t]`` is the value of the
observation the transition at ``t`` reached (``final_obs``), so truncated steps bootstrap.

Each function checks its arguments' shapes with chex at trace time. This module imports only
jax, numpy and chex.
"""
from __future__ import annotations

import chex
import jax
import jax.numpy as jnp


def gae(rewards, values, next_values, terminated, done, gamma, gae_lambda):
    """Generalized advantage estimation (Schulman et al. 2016, arXiv:1506.02438).

    Args:
      rewards:     [T, N] float, reward of transition t.
      values:      [T, N] float, V(s_t).
      next_values: [T, N] float, V(s'_t) of the state the transition reached (before auto-reset).
      terminated:  [T, N] bool, s'_t is terminal: do not bootstrap.
      done:        [T, N] bool, the episode ended at t (terminated or truncated): cut the trace.
      gamma, gae_lambda: scalars (may be traced).
    Returns:
      advantages [T, N]; value targets are ``advantages + values``.
    """
    chex.assert_equal_shape([rewards, values, next_values, terminated, done])
    not_term = 1.0 - terminated.astype(rewards.dtype)
    not_done = 1.0 - done.astype(rewards.dtype)
    deltas = rewards + gamma * not_term * next_values - values
    decay = gamma * gae_lambda * not_done

    def step(adv_next, xs):
        delta, d = xs
        adv = delta + d * adv_next
        return adv, adv

    _, adv = jax.lax.scan(step, jnp.zeros_like(deltas[0]), (deltas, decay), reverse=True)
    return adv


def discounted_returns(rewards, done, gamma, bootstrap=None):
    """Monte-Carlo reward-to-go, cut at episode ends.

    Args:
      rewards: [T, N]; done: [T, N] bool, the episode ended at t; gamma: scalar.
      bootstrap: optional [N] value added (discounted) after the last step of unfinished episodes.
    Returns:
      G [T, N] with ``G_t = r_t + gamma * (1 - done_t) * G_{t+1}``.
    """
    chex.assert_equal_shape([rewards, done])
    if bootstrap is not None:
        chex.assert_shape(bootstrap, rewards.shape[1:])
    not_done = 1.0 - done.astype(rewards.dtype)
    init = jnp.zeros_like(rewards[0]) if bootstrap is None else bootstrap

    def step(g_next, xs):
        r, nd = xs
        g = r + gamma * nd * g_next
        return g, g

    _, g = jax.lax.scan(step, init, (rewards, not_done), reverse=True)
    return g


def q_lambda(rewards, next_q_max, terminated, done, gamma, lam):
    """Peng's Q(lambda) returns over a rollout, computed backwards (PQN: Gallici et al. 2024, arXiv:2407.04811).

    ``G_t = r_t + gamma (1 - terminated_t) [(1 - lambda) max_a Q(s'_t, a) + lambda G_{t+1}]``, where
    ``G_{t+1}`` is replaced by ``max_a Q(s'_t, a)`` at the last step and where the episode ended
    (``done_t``: a truncated episode bootstraps from the state it reached and the trace is cut).

    Args:
      rewards:    [T, N] float, reward of transition t.
      next_q_max: [T, N] float, ``max_a Q(s'_t, a)`` of the state the transition reached (before auto-reset).
      terminated: [T, N] bool, s'_t is terminal: do not bootstrap.
      done:       [T, N] bool, the episode ended at t: cut the trace.
      gamma, lam: scalars (may be traced).
    Returns:
      G [T, N]. With ``done = terminated`` and no episode end it equals rlax's ``q_lambda`` target
      (``lambda_returns`` of ``max q_t``).
    """
    chex.assert_equal_shape([rewards, next_q_max, terminated, done])
    not_term = 1.0 - terminated.astype(rewards.dtype)
    trace = lam * (1.0 - done.astype(rewards.dtype))

    def step(g_next, xs):
        r, q, nt, tr = xs
        g = r + gamma * nt * (q + tr * (g_next - q))
        return g, g

    _, g = jax.lax.scan(step, next_q_max[-1], (rewards, next_q_max, not_term, trace), reverse=True)
    return g


# ----------------------------------------------------------------------------- value-based targets
# Batch-major here: ``B`` is the batch of sampled transitions, ``n`` the n-step window.


def select_action_values(values, actions):
    """``values[b, actions[b]]`` for Q values [B, A] -> [B], or logits [B, A, K] -> [B, K].

    A one-hot contraction rather than a gather: its gradient is a multiply, not a scatter-add.
    """
    chex.assert_rank(values, {2, 3})
    chex.assert_rank(actions, 1)
    chex.assert_equal_shape_prefix([values, actions], 1)
    onehot = jax.nn.one_hot(actions, values.shape[1], dtype=values.dtype)
    if values.ndim == 3:
        # An unrolled sum over the (static, small) action axis: elementwise ops only. The same
        # contraction written as a reduce over the middle axis became an XLA:CPU (YNNPACK)
        # fusion that took 300 us for [128, 2, 51] and made C51 2x slower.
        out = values[:, 0] * onehot[:, 0, None]
        for a in range(1, values.shape[1]):
            out = out + values[:, a] * onehot[:, a, None]
        return out
    return (values * onehot).sum(-1)


def n_step_window(rewards, terminated, truncated, gamma):
    """n-step return over windows sampled from a replay buffer, cut at episode ends.

    Each row is the window of ``n`` consecutive single-step transitions of one env starting at
    the sampled transition (Sutton & Barto ch. 7; Hessel et al. 2018, "Rainbow", arXiv:1710.02298).
    The sum stops after the first step that ends an episode; the target then bootstraps with
    ``gamma^k`` from the state reached at step ``k`` (``final_obs`` of that step), unless that
    step *terminated*: a truncated episode still bootstraps, a terminated one does not.

    Args:
      rewards:    [B, n] float, r of steps t, t+1, ..., t+n-1.
      terminated: [B, n] bool.
      truncated:  [B, n] bool.
      gamma: scalar (may be traced).
    Returns:
      (returns [B], bootstrap_discount [B], last [B] int32) where the target is
      ``returns + bootstrap_discount * V(s_next)`` and ``s_next`` is the state reached by step
      ``t + last`` (``0 <= last < n``).
    """
    chex.assert_rank(rewards, 2)
    chex.assert_equal_shape([rewards, terminated, truncated])
    n = rewards.shape[-1]
    done = jnp.logical_or(terminated, truncated)
    # alive[j]: step j is part of the window (no episode end strictly before j).
    ended_before = jnp.cumsum(done.astype(jnp.int32), axis=-1) - done.astype(jnp.int32)
    alive = (ended_before == 0).astype(rewards.dtype)
    powers = gamma ** jnp.arange(n, dtype=rewards.dtype)
    returns = (rewards * alive * powers).sum(-1)
    k = alive.sum(-1).astype(jnp.int32)  # steps in the window, 1..n
    last = k - 1
    term_last = jnp.take_along_axis(terminated, last[..., None], axis=-1)[..., 0]
    disc = (gamma ** k.astype(rewards.dtype)) * (1.0 - term_last.astype(rewards.dtype))
    return returns, disc, last


def _check_q_target_args(returns, discounts, q_next):
    """Shapes shared by the Q targets: returns [B], discounts [B], q_next [B, A]."""
    chex.assert_rank([returns, discounts], 1)
    chex.assert_equal_shape([returns, discounts])
    chex.assert_rank(q_next, 2)
    chex.assert_equal_shape_prefix([returns, q_next], 1)


def double_q_target(returns, discounts, q_next_target, q_next_online):
    """Double-Q target (van Hasselt et al. 2016, arXiv:1509.06461).

    The online network selects ``a* = argmax_a q_next_online``; the target network evaluates it.

    Args:
      returns: [B] (n-step) reward sums; discounts: [B] bootstrap discounts (0 at termination).
      q_next_target: [B, A] target-network Q at the next state.
      q_next_online: [B, A] online-network Q at the next state (the selector).
    Returns:
      targets [B] ``returns + discounts * q_next_target[a*]`` (no gradient flows through them).
    """
    _check_q_target_args(returns, discounts, q_next_target)
    chex.assert_equal_shape([q_next_target, q_next_online])
    a_star = jnp.argmax(q_next_online, axis=-1)
    q = jnp.take_along_axis(q_next_target, a_star[..., None], axis=-1)[..., 0]
    return jax.lax.stop_gradient(returns + discounts * q)


def q_target(returns, discounts, q_next_target):
    """Plain DQN target (Mnih et al. 2015): ``returns + discounts * max_a q_next_target``. [B], [B], [B, A] -> [B]."""
    _check_q_target_args(returns, discounts, q_next_target)
    return jax.lax.stop_gradient(returns + discounts * q_next_target.max(-1))


def categorical_projection(atoms, probs, returns, discounts, method: str = "auto"):
    """Project the distribution ``returns + discounts * Z`` onto the fixed support ``atoms`` (C51).

    Bellemare et al. 2017, "A Distributional Perspective on RL", arXiv:1707.06887, Algorithm 1:
    each shifted atom's mass is split between its two neighbours on the support (the L2/Cramér
    projection; the same as ``rlax.categorical_l2_project``). Mass beyond ``[v_min, v_max]`` is
    clipped to the end atoms.

    Args:
      atoms: [K] evenly spaced support ``linspace(v_min, v_max, K)``.
      probs: [B, K] probabilities of the next-state distribution (of the chosen action).
      returns: [B]; discounts: [B].
      method: ``"scatter"``, ``"dense"`` (below), or ``"auto"``: scatter on CPU, dense elsewhere.
    Returns:
      projected probabilities [B, K] (rows sum to 1), without gradient.
    """
    chex.assert_rank([atoms, probs, returns, discounts], [1, 2, 1, 1])
    chex.assert_equal_shape([returns, discounts])
    chex.assert_equal_shape_prefix([probs, returns], 1)
    chex.assert_equal_shape_suffix([probs, atoms], 1)
    if method == "auto":
        method = "scatter" if jax.default_backend() == "cpu" else "dense"
    if method not in ("scatter", "dense"):
        raise ValueError(f"method must be 'auto', 'scatter' or 'dense', got {method!r}")
    v_min, v_max = atoms[0], atoms[-1]
    k = atoms.shape[0]
    dz = (v_max - v_min) / (k - 1)
    # b: where each shifted source atom lands, in units of atom index (0 .. K-1).
    b = (jnp.clip(returns[:, None] + discounts[:, None] * atoms[None, :], v_min, v_max) - v_min) / dz  # [B, K]
    if method == "scatter":
        # Scatter each source atom's mass onto its two neighbours floor(b) and floor(b) + 1:
        # O(B K) work. On XLA:CPU this ran 3.6x faster than the dense form below (49 vs 180 us
        # for B=128, K=51). Summation order is fixed on CPU, so results stay deterministic.
        lower = jnp.floor(b)
        w_upper = (b - lower) * probs
        w_lower = probs - w_upper
        li = lower.astype(jnp.int32)
        ui = jnp.minimum(li + 1, k - 1)  # b == K-1 exactly: w_upper is 0, so the clamp adds nothing
        rows = jnp.arange(probs.shape[0])[:, None]
        out = jnp.zeros_like(probs).at[rows, li].add(w_lower).at[rows, ui].add(w_upper)
    else:
        # Dense form: weight of source atom j on target atom i is the hat max(0, 1 - |b_j - i|).
        # No scatter, so it stays deterministic on GPU (where scatter-add uses atomics) and
        # parallelises well there. [B, K_j, K_i], reduced over j.
        w = jnp.maximum(1.0 - jnp.abs(b[:, :, None] - jnp.arange(k, dtype=b.dtype)), 0.0)
        out = (w * probs[:, :, None]).sum(1)
    return jax.lax.stop_gradient(out)


def categorical_q_target(atoms, returns, discounts, logits_next_target, q_next_selector):
    """C51 target distribution with greedy (or double, when the selector is the online net) action choice.

    Args:
      atoms: [K]; returns, discounts: [B].
      logits_next_target: [B, A, K] target-network logits at the next state.
      q_next_selector: [B, A] Q values that pick the next action: the target net's own
        expectation for C51, the online net's for double C51 (Rainbow).
    Returns:
      target probabilities [B, K].
    """
    chex.assert_rank([logits_next_target, q_next_selector], [3, 2])
    chex.assert_equal_shape_prefix([logits_next_target, q_next_selector], 2)
    logits = select_action_values(logits_next_target, jnp.argmax(q_next_selector, axis=-1))
    return categorical_projection(atoms, jax.nn.softmax(logits, axis=-1), returns, discounts)
