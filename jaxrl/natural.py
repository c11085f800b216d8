"""Natural-gradient steps in a KL trust region: TRPO's pieces (Schulman et al. 2015, arXiv:1502.05477).

Everything runs on one flat parameter vector ``theta [P]`` (``jax.flatten_util.ravel_pytree``),
inside ``jit`` and ``vmap``, with fixed iteration bounds (``lax.while_loop``), so a TRPO update is
part of the one compiled training program and seeds vmap.

* :func:`fisher_vector_product`: ``v -> F v + damping v`` where ``F`` is the Hessian at ``theta``
  of the mean ``KL(pi_old || pi_theta)`` (with ``pi_old`` the policy at ``theta``, held fixed): the
  Fisher information of the policy (Schulman et al. 2015, appendix C). Computed as a Hessian-vector
  product, ``jax.jvp`` over ``jax.grad`` (linearized once); the ``[P, P]`` matrix is never formed.
* :func:`conjugate_gradient`: solves ``F x = g`` with matrix-vector products only.
* :func:`scale_to_kl`: the step ``beta x`` with ``beta = sqrt(2 max_kl / x^T F x)``, on the
  boundary of the quadratic model of the KL ball ``1/2 s^T F s <= max_kl``.
* :func:`line_search`: backtracking ``theta + ratio^k s``, ``k = 0, 1, ...``; the first step whose
  surrogate improves and whose *measured* KL is within ``max_kl`` is taken, otherwise none.
* :func:`trpo_step`: the four above, from a surrogate and a KL function of ``theta``.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp


def fisher_vector_product(kl_fn: Callable, theta, damping=0.0) -> Callable:
    """``v [P] -> (H + damping I) v [P]``, ``H`` the Hessian of ``kl_fn`` at ``theta [P]``.

    ``kl_fn(theta) -> scalar``: the mean ``KL(pi_old || pi_theta)`` over a batch of states, with
    ``pi_old``'s distribution a constant equal to the policy at ``theta`` (its minimum, where the
    Hessian is the Fisher matrix).

    The product is ``jax.jvp`` of ``jax.grad(kl_fn)`` at ``theta``, linearized once
    (``jax.linearize``: the forward and backward passes at ``theta`` run once, and each product
    then costs only the tangent computation). 10 products on PPO's 64-64 CartPole policy, 2,048
    states: 20 ms against 45 ms with a fresh ``jax.jvp`` per product (2-core CPU, shared).
    """
    _, tangent = jax.linearize(jax.grad(kl_fn), theta)

    def fvp(v):
        return tangent(v) + damping * v

    return fvp


def conjugate_gradient(matvec: Callable, b, iters: int, tol: float = 1e-10):
    """Solve ``A x = b`` for symmetric positive-definite ``A`` given as ``matvec(v) = A v``.

    b ``[P]``. At most ``iters`` iterations from ``x = 0`` (a ``lax.while_loop``), stopping early
    when the squared residual ``r^T r`` falls below ``tol``. Returns ``(x [P], r^T r)``; after ``P``
    iterations the solution is exact up to rounding.
    """
    def cond(c):
        i, _, _, _, rr = c
        return (i < iters) & (rr > tol)

    def body(c):
        i, x, r, p, rr = c
        ap = matvec(p)
        alpha = rr / jnp.maximum(p @ ap, 1e-30)
        x, r = x + alpha * p, r - alpha * ap
        rr_new = r @ r
        return i + 1, x, r, r + (rr_new / jnp.maximum(rr, 1e-30)) * p, rr_new

    b = jnp.asarray(b)
    _, x, _, _, rr = jax.lax.while_loop(cond, body, (jnp.zeros((), jnp.int32), jnp.zeros_like(b), b, b, b @ b))
    return x, rr


def scale_to_kl(x, fx, max_kl):
    """The step ``beta x`` with ``1/2 (beta x)^T F (beta x) = max_kl``: ``beta = sqrt(2 max_kl / x^T F x)``.

    x, fx = ``F x``: ``[P]``. A zero direction (``x^T F x = 0``) gives a zero step.
    """
    xfx = x @ fx
    return x * jnp.where(xfx > 0, jnp.sqrt(2.0 * max_kl / jnp.maximum(xfx, 1e-30)), 0.0)


class LineSearch(NamedTuple):
    """Outcome of :func:`line_search` (scalars except ``theta``)."""

    theta: jax.Array  # [P] the accepted parameters, or the old ones
    accepted: jax.Array  # bool: a step was taken
    fraction: jax.Array  # the accepted fraction ratio^k of the full step (0 when none)
    improvement: jax.Array  # surrogate(new) - surrogate(old) (0 when none)
    kl: jax.Array  # measured KL(pi_old || pi_new) (0 when none)
    tries: jax.Array  # int32: steps evaluated


def line_search(objective: Callable, theta, step, max_kl, num_backtracks: int, ratio=0.5) -> LineSearch:
    """Backtracking line search on ``theta + ratio^k step``, ``k = 0 .. num_backtracks - 1``.

    ``objective(theta) -> (surrogate, kl)``: the surrogate to maximise and the mean
    ``KL(pi_old || pi_theta)``. The first ``k`` whose surrogate improves on ``objective(theta)``'s
    (strictly) and whose KL is at most ``max_kl`` is accepted; if none is, ``theta`` is returned
    unchanged. A ``lax.while_loop``: under ``vmap`` each member keeps its own first acceptance.
    """
    surr_old, _ = objective(theta)

    def cond(c):
        k, done = c[0], c[1]
        return (k < num_backtracks) & ~done

    def body(c):
        k, _, _, _, _, _ = c
        frac = jnp.asarray(ratio, jnp.float32) ** k.astype(jnp.float32)
        new = theta + frac * step
        surr, kl = objective(new)
        ok = (surr - surr_old > 0) & (kl <= max_kl) & jnp.isfinite(surr) & jnp.isfinite(kl)
        zero = jnp.zeros((), jnp.float32)
        return (k + 1, ok, jnp.where(ok, new, theta), jnp.where(ok, frac, zero), jnp.where(ok, surr - surr_old, zero),
                jnp.where(ok, kl, zero))

    z = jnp.zeros((), jnp.float32)
    init = (jnp.zeros((), jnp.int32), jnp.zeros((), bool), theta, z, z, z)
    k, ok, new, frac, imp, kl = jax.lax.while_loop(cond, body, init)
    return LineSearch(new, ok, frac, imp, kl, k)


class TRPOStats(NamedTuple):
    """Diagnostics of one :func:`trpo_step` (scalars)."""

    grad_norm: jax.Array  # |g| of the surrogate
    cg_residual: jax.Array  # r^T r after conjugate gradient
    expected_improvement: jax.Array  # g^T s of the full step
    search: LineSearch


def trpo_step(objective: Callable, kl_fn: Callable, theta, *, max_kl, damping, cg_iters: int, num_backtracks: int,
              ratio=0.5):
    """One TRPO policy step. Returns ``(theta_new [P], TRPOStats)``.

    objective(theta) -> (surrogate, kl): the surrogate to maximise (e.g. ``mean(ratio * A)``) and
      the mean KL from the old policy, both from one forward pass (the line search calls it);
    kl_fn(theta) -> mean KL(pi_old || pi_theta), for the Fisher-vector products.

    The natural gradient ``x = F^-1 g`` by ``cg_iters`` conjugate-gradient iterations on damped
    Fisher-vector products, scaled to the KL bound, then the backtracking line search.
    """
    g = jax.grad(lambda t: objective(t)[0])(theta)
    fvp = fisher_vector_product(kl_fn, theta, damping)
    x, residual = conjugate_gradient(fvp, g, cg_iters)
    step = scale_to_kl(x, fvp(x), max_kl)
    search = line_search(objective, theta, step, max_kl, num_backtracks, ratio)
    return search.theta, TRPOStats(jnp.sqrt(g @ g), residual, g @ step, search)
