"""Parameter initializers that are safe to vmap on every backend.

``orthogonal`` here computes Q of a Gaussian matrix by twice-iterated classical
Gram-Schmidt (CGS2) in plain matrix products inside a ``lax.fori_loop``.  It calls no LAPACK
routine.  Why: on XLA:CPU (jaxlib 0.10.2, 2 cores) a jitted ``vmap`` over seeds of an init
that uses ``jax.nn.initializers.orthogonal`` can deadlock, with both intra-op threads parked in
the batched LAPACK QR kernel (``jax::OrthogonalQr``).  Using this initializer keeps every
multi-seed program of jaxrl free of that kernel.  ``tests/test_hang_regression.py`` guards it.

The result has the same distribution as the QR-based initializer (Haar-orthogonal columns,
the sign convention of a positive R diagonal), scaled by ``scale``.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def _orthonormal_columns(a: jax.Array) -> jax.Array:
    """Orthonormalise the columns of ``a`` [m, n] (m >= n) with CGS2. Returns Q [m, n]."""
    m, n = a.shape

    def body(j, q):
        v = jax.lax.dynamic_slice_in_dim(a, j, 1, axis=1)[:, 0]
        for _ in range(2):  # re-orthogonalise once: CGS2 is as accurate as Householder here
            v = v - q @ (q.T @ v)
        v = v / jnp.linalg.norm(v)
        return jax.lax.dynamic_update_slice_in_dim(q, v[:, None], j, axis=1)

    return jax.lax.fori_loop(0, n, body, jnp.zeros_like(a))


def orthogonal(scale: float = 1.0, column_axis: int = -1, dtype=jnp.float32):
    """Drop-in for ``jax.nn.initializers.orthogonal`` that uses no LAPACK call."""

    def init(key, shape, dtype=dtype):
        if len(shape) < 2:
            raise ValueError("orthogonal initializer needs at least 2 dimensions")
        n_rows = int(np.prod(shape)) // shape[column_axis]
        n_cols = shape[column_axis]
        mat_shape = (n_cols, n_rows) if n_rows < n_cols else (n_rows, n_cols)
        a = jax.random.normal(key, mat_shape, jnp.float32)
        q = _orthonormal_columns(a)
        if n_rows < n_cols:
            q = q.T
        q = jnp.reshape(q, (n_rows, n_cols))
        q = jnp.moveaxis(jnp.reshape(q, tuple(np.delete(shape, column_axis)) + (n_cols,)), -1, column_axis)
        return (scale * q).astype(dtype)

    return init
