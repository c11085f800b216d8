"""Optimizers, gradient steps and target networks: thin, tested compositions of optax.

Every agent builds its optimizer with :func:`optimizer` (a learning-rate schedule, global-norm
clipping and Adam or RMSprop, all from optax) and takes gradient steps with :func:`gradient_step`.
Target networks move with :func:`polyak` (``optax.incremental_update``).

Parameters stay flax pytrees in the agent state. The optimizer runs on one flat vector
(``optax.flatten``): Adam and the norm clip are then a handful of fused ops instead of a handful per
layer, which is most of the cost of a small network's gradient step on CPU.
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import optax


def schedule(lr, total_steps: int, anneal: bool) -> Callable:
    """``count -> learning rate``: ``lr`` annealed linearly to 0 over ``total_steps`` optimizer steps,
    or constant. ``lr`` may be traced (a swept hyperparameter)."""
    if anneal:
        return optax.linear_schedule(lr, 0.0, max(1, int(total_steps)))
    return optax.constant_schedule(lr)


def optimizer(lr, *, total_steps: int = 1, anneal: bool = False, max_grad_norm=None, kind: str = "adam",
              eps=1e-8, rmsprop_decay: float = 0.99, momentum=None, flat: bool = True,
              weight_decay=None) -> optax.GradientTransformation:
    """The optimizer of one network (or of several that share it).

    Args:
      lr: learning rate (may be traced).
      total_steps, anneal: linear annealing of ``lr`` to 0 over ``total_steps`` optimizer steps.
      max_grad_norm: clip the global gradient norm (may be traced; ``None`` or ``<= 0``: no clip).
      kind: ``"adam"``, ``"radam"`` (PQN), ``"rmsprop"`` (RMSprop as in A2C: decay 0.99, ``eps`` inside the root) or
        ``"sgd"`` (with heavy-ball ``momentum``, may be traced; K-FAC steps in ACKTR).
      eps: Adam / RMSprop epsilon (may be traced).
      flat: run the whole chain on one flattened vector (``optax.flatten``).
      weight_decay: add ``weight_decay * params`` to the gradient before Adam / RMSprop (L2
        regularisation, ``optax.add_decayed_weights``; may be traced; ``None``: none).
    """
    sched = schedule(lr, total_steps, anneal)
    if kind == "adam":
        opt = optax.adam(sched, eps=eps)
    elif kind == "radam":
        opt = optax.radam(sched, eps=eps)
    elif kind == "rmsprop":
        opt = optax.rmsprop(sched, decay=rmsprop_decay, eps=eps)
    elif kind == "sgd":
        opt = optax.sgd(sched, momentum=momentum)
    else:
        raise ValueError(f"unknown optimizer kind {kind!r}")
    if weight_decay is not None:
        opt = optax.chain(optax.add_decayed_weights(weight_decay), opt)
    if max_grad_norm is not None:
        limit = jnp.where(jnp.asarray(max_grad_norm) > 0, max_grad_norm, jnp.inf)
        opt = optax.chain(optax.clip_by_global_norm(limit), opt)
    return optax.flatten(opt) if flat else opt


def gradient_step(loss_fn: Callable, tx: optax.GradientTransformation, params, opt_state, *args):
    """One step of ``tx`` on ``loss_fn(params, *args) -> (loss, aux)``.

    Returns ``(params, opt_state, loss, aux, grad_norm)``.
    """
    (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, *args)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss, aux, optax.tree.norm(grads)


def polyak(online, target, rate):
    """``rate * online + (1 - rate) * target`` for every leaf (``optax.incremental_update``).

    ``rate`` 1 copies (a hard target update), 0 keeps the target; it may be traced.
    """
    return optax.incremental_update(online, target, rate)


def crossed(before, after, every: int):
    """True when a counter that went from ``before`` to ``after`` passed a multiple of ``every``."""
    return (after // every) > (before // every)
