"""A 2-D convolution layer whose lowering is chosen per backend (same parameters as ``nn.Conv``).

XLA:CPU runs a convolution that sits inside a ``while`` loop (every jaxrl training program is a
``lax.scan``) about 10x slower than the same convolution outside one (jax-ml/jax#12868). A
Nature-CNN gradient step on a batch of 32 measured, on this project's 2-core CPU:

=====================================  ==========  ================
lowering                               standalone  inside lax.scan
=====================================  ==========  ================
``lax.conv`` (flax ``nn.Conv``)        22-28 ms    225-239 ms
``conv_general_dilated_patches`` + dot 77-85 ms    29 ms
strided slices + dot (``"im2col"``)    19 ms       17 ms
=====================================  ==========  ================

So on CPU :class:`Conv2D` writes the convolution as im2col: ``kh * kw`` strided slices of the
input, concatenated on the channel axis, then one matrix product with the kernel reshaped to
``[kh * kw * C_in, C_out]``. Elsewhere (GPU, TPU) it is ``lax.conv_general_dilated``, which
those backends run natively. Both compute the same function from the same parameters
(``kernel [kh, kw, C_in, C_out]`` in HWIO order and ``bias [C_out]``, exactly ``nn.Conv``'s), so
checkpoints move between backends; ``tests/test_networks.py`` checks the two agree.
"""
from __future__ import annotations

from typing import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

IMPLS = ("auto", "im2col", "xla")


def resolve_impl(impl: str) -> str:
    """``"auto"`` -> ``"im2col"`` on the CPU backend, ``"xla"`` elsewhere."""
    if impl not in IMPLS:
        raise ValueError(f"conv impl must be one of {IMPLS}, got {impl!r}")
    if impl == "auto":
        return "im2col" if jax.default_backend() == "cpu" else "xla"
    return impl


def im2col(x, kernel_size: Sequence[int], strides: Sequence[int]):
    """VALID patches: ``x [N, H, W, C] -> [N, H', W', kh * kw * C]``.

    ``H' = (H - kh) // sh + 1`` (likewise ``W'``). Feature order is ``(i, j, c)`` with ``c``
    fastest, matching an HWIO kernel reshaped to ``[kh * kw * C, C_out]``.
    """
    (kh, kw), (sh, sw) = kernel_size, strides
    h, w = x.shape[-3], x.shape[-2]
    oh, ow = (h - kh) // sh + 1, (w - kw) // sw + 1
    cols = [x[..., i:i + (oh - 1) * sh + 1:sh, j:j + (ow - 1) * sw + 1:sw, :]
            for i in range(kh) for j in range(kw)]
    return jnp.concatenate(cols, axis=-1)


class Conv2D(nn.Module):
    """VALID 2-D convolution on ``[N, H, W, C]`` inputs, ``nn.Conv``'s parameters, backend-chosen lowering."""

    features: int
    kernel_size: Sequence[int]
    strides: Sequence[int] = (1, 1)
    kernel_init: Callable = nn.initializers.lecun_normal()
    impl: str = "auto"

    @nn.compact
    def __call__(self, x):
        kh, kw = self.kernel_size
        c_in = x.shape[-1]
        kernel = self.param("kernel", self.kernel_init, (kh, kw, c_in, self.features))
        bias = self.param("bias", nn.initializers.zeros, (self.features,))
        if resolve_impl(self.impl) == "im2col":
            y = im2col(x, self.kernel_size, self.strides) @ kernel.reshape(kh * kw * c_in, self.features)
        else:
            y = jax.lax.conv_general_dilated(x, kernel, tuple(self.strides), "VALID",
                                             dimension_numbers=("NHWC", "HWIO", "NHWC"))
        return y + bias
