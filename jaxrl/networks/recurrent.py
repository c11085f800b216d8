"""A recurrent actor-critic: torso -> GRU or LSTM cell -> actor and critic heads, as pure functions.

``obs -> torso (one dense layer, or the Nature CNN for frames) -> cell (flax's ``GRUCell`` or
``OptimizedLSTMCell``, ``hidden`` units) -> ActorCritic heads`` (an actor and a critic MLP of
``layers - 1`` hidden layers each on the cell's output; :class:`jaxrl.networks.mlp.ActorCritic` with
its ``heads`` subsets). The memory is the cell's carry: ``h [n, H]`` (GRU) or ``(c, h)`` (LSTM), zeros
for a fresh episode.

:func:`make_recurrent` returns :class:`Recurrent`, whose functions are what the on-policy core and
PPO call: one step of a rollout or of bootstrapping, over any batch shape (``step``), and a replay
of whole sequences from a stored memory with resets where episodes began (``unroll``; the torso runs
on every step at once, outside the time loop). The recurrent kernels use jaxrl's LAPACK-free
orthogonal initializer (flax's default is QR-based, which can deadlock in a vmapped init on XLA:CPU:
:mod:`jaxrl.networks.init`).
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxrl.networks.init import orthogonal
from jaxrl.networks.mlp import ActorCritic
from jaxrl.networks.torsos import MLP, NatureCNN, flatten_obs

CELLS = ("gru", "lstm")


class Torso(nn.Module):
    """obs ``[..., *obs_shape]`` -> features: one dense layer on the flattened observation, or the Nature CNN."""

    hidden: int = 64
    activation: str = "tanh"
    obs_ndim: int = 1
    torso: str = "mlp"

    @nn.compact
    def __call__(self, obs):
        if self.torso == "nature_cnn":
            return NatureCNN()(obs)
        return MLP((self.hidden,), self.activation)(flatten_obs(obs, self.obs_ndim))


class Recurrent(NamedTuple):
    """Pure functions of a recurrent actor-critic (``out = (logits_or_mean, value, log_std)``, see ActorCritic).

    init(key, obs [*obs_shape]) -> params ``{"torso", "cell", "heads"}``
    init_memory(n) -> memory of ``n`` fresh episodes (leaves ``[n, H]``)
    step(params, obs [..., *obs_shape], memory [..., H], heads="both") -> (out, memory): one cell step
    unroll(params, obs [T, n, *obs_shape], memory [n, H], starts [T, n] bool, heads="both") -> out [T, n]
        a sequence replayed from ``memory`` (the memory before step 0), the memory reset to its initial
        value before every step ``t`` where ``starts[t]`` (an episode began there): gradients do not
        flow across an episode boundary.
    """

    init: Callable
    init_memory: Callable
    step: Callable
    unroll: Callable


def make_recurrent(action_dim: int, continuous: bool, hidden: int, layers: int, activation: str,
                   obs_ndim: int, torso: str, cell: str) -> Recurrent:
    if cell not in CELLS:
        raise ValueError(f"cell must be one of {CELLS}, got {cell!r}")
    torso_net = Torso(hidden, activation, obs_ndim, torso)
    kind = nn.GRUCell if cell == "gru" else nn.OptimizedLSTMCell
    cell_net = kind(features=hidden, recurrent_kernel_init=orthogonal())
    heads = {h: ActorCritic(action_dim, continuous, (hidden,) * (layers - 1), activation, 1, "mlp", heads=h)
             for h in ("both", "policy", "value")}

    def init_memory(n: int):
        h = jnp.zeros((n, hidden), jnp.float32)
        return h if cell == "gru" else (h, h)

    def init(key, obs):
        k_torso, k_cell, k_heads = jax.random.split(key, 3)
        params = {"torso": torso_net.init(k_torso, obs[None])}
        x = torso_net.apply(params["torso"], obs[None])
        params["cell"] = cell_net.init(k_cell, init_memory(1), x)
        _, y = cell_net.apply(params["cell"], init_memory(1), x)
        params["heads"] = heads["both"].init(k_heads, y)
        return params

    def step(params, obs, memory, which: str = "both"):
        memory, y = cell_net.apply(params["cell"], memory, torso_net.apply(params["torso"], obs))
        return heads[which].apply(params["heads"], y), memory

    def unroll(params, obs, memory, starts, which: str = "both"):
        x = torso_net.apply(params["torso"], obs)  # every step at once, outside the time loop
        fresh = init_memory(starts.shape[1])

        def body(m, xs):
            x_t, start = xs
            m = jax.tree_util.tree_map(lambda a, f: jnp.where(start[:, None], f, a), m, fresh)
            return cell_net.apply(params["cell"], m, x_t)

        _, y = jax.lax.scan(body, memory, (x, starts))
        return heads[which].apply(params["heads"], y)

    return Recurrent(init, init_memory, step, unroll)
