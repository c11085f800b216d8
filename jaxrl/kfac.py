"""K-FAC: Kronecker-factored natural gradients for dense and convolution layers, as ACKTR uses them.

References: Martens & Grosse 2015 (K-FAC, arXiv:1503.05671), Grosse & Martens 2016 (KFC, convolutions,
arXiv:1602.01407), Wu et al. 2017 (ACKTR, arXiv:1708.05144). The layers of any flax network are
found and tapped by method interception; nothing in the network changes.

For a layer ``s = W^T a + b`` (``W [d_in, d_out]``), with ``ã = [a, 1]`` and ``g = d log p(y|x) / d s``
for targets ``y`` *sampled from the model* (the true Fisher, not the empirical one), the Fisher block
of ``[W; b]`` (row-major) is approximated by ``A ⊗ G`` with ``A = E[ã ã^T]`` ``[d_in + 1, d_in + 1]`` and
``G = E[g g^T]`` ``[d_out, d_out]``. The natural gradient of that block is then
``(A ⊗ G)^-1 vec(∇) = vec(A^-1 ∇ G^-1)``. A convolution is the same over its im2col patches, with
``A`` the mean over samples and output locations and ``G`` summed over locations, averaged over
samples (KFC's spatially uncorrelated, homogeneous approximation).

* :func:`find_layers` / :func:`tapped`: the tapped layers of ``apply`` and a version of ``apply``
  that adds a zero perturbation to each layer's output (so a VJP gives ``g``) and returns the inputs.
* :func:`batch_factors`: one batch's ``A`` and ``G`` per layer; :func:`update_factors`: their running
  average; :func:`update_inverses`: damped inverses, computed by Newton-Schulz iteration (matrix
  products only: no LAPACK call, which can hang vmapped XLA:CPU programs, docs/performance.md);
  :func:`precondition`: ``A_d^-1 ∇ G_d^-1`` per layer; :func:`trust_region_scale`: ACKTR's step
  size bound from the KL.
* Damping is factored Tikhonov damping with the pi-correction of Martens & Grosse (section 6.3):
  ``A + pi sqrt(lambda) I`` and ``G + sqrt(lambda) / pi I``, ``pi = sqrt((tr A / dim A) / (tr G / dim G))``.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxrl.networks.conv import Conv2D, im2col


class Layer(NamedTuple):
    """A tapped layer: ``kind`` ``"dense"`` or ``"conv"``, its module path, ``A``'s and ``G``'s sizes."""

    kind: str
    path: tuple
    d_in: int  # rows of A: the input features (patch size for a convolution) + 1 for the bias
    d_out: int  # rows of G: output features


class State(NamedTuple):
    """Per layer (keyed by ``"/".join(path)``): running factors and their damped inverses."""

    A: dict
    G: dict
    A_inv: dict
    G_inv: dict
    count: jax.Array  # batches folded into the running factors


def _features(module, x):
    """The rows whose outer products make ``A``: ``[..., d]`` for a dense layer, patches for a conv."""
    if isinstance(module, Conv2D):
        return im2col(x, module.kernel_size, module.strides)
    return x


def tapped(apply: Callable, perturbations=None) -> Callable:
    """``apply(params, *args)`` run with its dense and conv layers tapped.

    Returns ``f(params, *args) -> (out, inputs)``: ``inputs[key]`` are the feature rows of each
    layer (``[..., d_in - 1]``), and each layer's output gets ``perturbations[key]`` added (zeros of
    the output's shape), so the VJP with respect to ``perturbations`` is ``g`` per sample. A layer
    called twice (shared weights) is refused.
    """
    def f(params, *args):
        inputs = {}

        def interceptor(next_fun, a, kw, context):
            module = context.module
            if context.method_name != "__call__" or not isinstance(module, (nn.Dense, Conv2D)):
                return next_fun(*a, **kw)
            key = "/".join(module.path)
            if key in inputs:
                raise ValueError(f"layer {key} is called twice: K-FAC here needs one call per layer")
            inputs[key] = _features(module, a[0])
            out = next_fun(*a, **kw)
            return out if perturbations is None else out + perturbations[key]

        with nn.intercept_methods(interceptor):
            out = apply(params, *args)
        return out, inputs

    return f


def find_layers(apply: Callable, params, *args):
    """The dense and conv layers ``apply(params, *args)`` calls (traced with ``jax.eval_shape``, nothing runs).

    Returns ``(layers, shapes)``: ``{key: Layer}`` and ``{key: ShapeDtypeStruct}`` of each layer's
    output (for :func:`zero_perturbations`). Keys are module paths joined by ``/``.
    """
    layers = {}

    def probe(params, *args):
        outs = {}

        def interceptor(next_fun, a, kw, context):
            out = next_fun(*a, **kw)
            module = context.module
            if context.method_name == "__call__" and isinstance(module, (nn.Dense, Conv2D)):
                key = "/".join(module.path)
                kind = "conv" if isinstance(module, Conv2D) else "dense"
                layers[key] = Layer(kind, tuple(module.path), _features(module, a[0]).shape[-1] + 1, out.shape[-1])
                outs[key] = out
            return out

        with nn.intercept_methods(interceptor):
            apply(params, *args)
        return outs

    shapes = jax.eval_shape(probe, params, *args)
    return layers, shapes


def zero_perturbations(shapes: dict) -> dict:
    return {k: jnp.zeros(s.shape, s.dtype) for k, s in shapes.items()}


def batch_factors(layers: dict, inputs: dict, grads: dict, batch_size: int):
    """One batch's ``(A, G)`` per layer.

    inputs[key]: ``[B, ..., d_in - 1]`` feature rows (``...`` = output locations of a conv);
    grads[key]: ``[B, ..., d_out]``, ``d log p(y_i|x_i) / d s`` for sampled ``y_i`` (per sample, not
    divided by ``B``). ``A`` averages ``ã ã^T`` over samples and locations; ``G`` sums ``g g^T``
    over locations and averages over the ``batch_size`` samples.
    """
    A, G = {}, {}
    for key, layer in layers.items():
        a = inputs[key].reshape(-1, layer.d_in - 1)
        a = jnp.concatenate([a, jnp.ones((a.shape[0], 1), a.dtype)], axis=1)
        g = grads[key].reshape(-1, layer.d_out)
        A[key] = a.T @ a / a.shape[0]
        G[key] = g.T @ g / batch_size
    return A, G


def init(layers: dict) -> State:
    """Identity factors and inverses (a first refresh before any statistics gives damped identities)."""
    A = {k: jnp.eye(layer.d_in) for k, layer in layers.items()}
    G = {k: jnp.eye(layer.d_out) for k, layer in layers.items()}
    return State(A, G, A, G, jnp.zeros((), jnp.int32))


def update_factors(state: State, A: dict, G: dict, decay) -> State:
    """Running averages ``F <- w F + (1 - w) F_batch`` with ``w = min(decay, count / (count + 1))``:
    the first batch replaces the initial identities, later ones decay exponentially."""
    c = state.count.astype(jnp.float32)
    w = jnp.minimum(decay, c / (c + 1.0))
    mix = lambda old, new: w * old + (1.0 - w) * new  # noqa: E731
    return state._replace(A=jax.tree_util.tree_map(mix, state.A, A), G=jax.tree_util.tree_map(mix, state.G, G),
                          count=state.count + 1)


def spd_inverse(m, iters: int = 40, tol: float = 1e-5):
    """Inverse of a symmetric positive-definite ``m [n, n]`` by Newton-Schulz iteration.

    ``X <- X (2I - m X)`` from ``X = I / |m|_F``, which converges (quadratically once close) for any
    SPD ``m``: about ``log2(|m|_F / lambda_min) + 5`` iterations. Stops when ``|I - m X|_F < tol`` or
    after ``iters`` (a ``lax.while_loop``). Matrix products only.
    """
    n = m.shape[-1]
    eye = jnp.eye(n, dtype=m.dtype)

    def cond(c):
        k, _, err = c
        return (k < iters) & (err > tol)

    def body(c):
        k, x, _ = c
        x = x @ (2.0 * eye - m @ x)
        return k + 1, x, jnp.linalg.norm(eye - m @ x)

    x0 = eye / jnp.maximum(jnp.linalg.norm(m), 1e-30)
    _, x, _ = jax.lax.while_loop(cond, body, (jnp.zeros((), jnp.int32), x0, jnp.asarray(jnp.inf, m.dtype)))
    return 0.5 * (x + x.T)


def damped(A, G, damping):
    """``(A + pi sqrt(lambda) I, G + sqrt(lambda) / pi I)`` with the pi-correction (section 6.3)."""
    ta = jnp.trace(A) / A.shape[0]
    tg = jnp.trace(G) / G.shape[0]
    pi = jnp.sqrt(jnp.maximum(ta, 1e-12) / jnp.maximum(tg, 1e-12))
    root = jnp.sqrt(damping)
    return A + pi * root * jnp.eye(A.shape[0]), G + root / pi * jnp.eye(G.shape[0])


def update_inverses(state: State, damping, iters: int = 40) -> State:
    """Recompute the damped inverses from the running factors."""
    A_inv, G_inv = {}, {}
    for key in state.A:
        a, g = damped(state.A[key], state.G[key], damping)
        A_inv[key], G_inv[key] = spd_inverse(a, iters), spd_inverse(g, iters)
    return state._replace(A_inv=A_inv, G_inv=G_inv)


def _get(tree, path):
    for p in path:
        tree = tree[p]
    return tree


def precondition(state: State, layers: dict, grads, other: Callable = lambda path, g: g):
    """The preconditioned gradient, a tree like ``grads`` (flax ``{"params": ...}``).

    Per layer, ``[∇W; ∇b]`` (a conv kernel reshaped to ``[kh * kw * C_in, C_out]``) becomes
    ``A_inv [∇W; ∇b] G_inv``. Every other leaf (e.g. a Gaussian's log-std) is ``other(path, g)``.
    """
    out = jax.tree_util.tree_map_with_path(lambda p, g: other(p, g), grads)
    for key, layer in layers.items():
        node = _get(grads["params"], layer.path)
        w = node["kernel"].reshape(-1, layer.d_out)
        wb = jnp.concatenate([w, node["bias"][None]], axis=0)
        nat = state.A_inv[key] @ wb @ state.G_inv[key]
        target = _get(out["params"], layer.path)
        target["kernel"] = nat[:-1].reshape(node["kernel"].shape)
        target["bias"] = nat[-1]
    return out


def trust_region_scale(precond, grads, lr, max_kl):
    """ACKTR's step scale: ``min(1, sqrt(2 max_kl / (lr^2 Δ^T ∇)))``.

    The step ``lr * scale * Δ`` of the natural direction ``Δ = F^-1 ∇`` then has a quadratic KL
    model ``1/2 (lr scale)^2 Δ^T F Δ = 1/2 (lr scale)^2 Δ^T ∇ <= max_kl`` (Wu et al. 2017, section 3.1:
    ``eta = min(eta_max, sqrt(2 delta / Δ^T F Δ))``).
    """
    dg = sum(jnp.vdot(p, g) for p, g in zip(jax.tree_util.tree_leaves(precond), jax.tree_util.tree_leaves(grads)))
    return jnp.minimum(1.0, jnp.sqrt(2.0 * max_kl / jnp.maximum(lr * lr * dg, 1e-30)))
