"""envpool's XLA interface for pools with float64 arrays (MuJoCo), with JAX in its default 32-bit mode.

envpool's MuJoCo pools take float64 actions and return float64 observations, rewards and info. Its
XLA interface (``pool.xla()``) declares those buffers through ``jax.dtypes.canonicalize_dtype``,
which turns float64 into float32 unless ``jax_enable_x64`` is on: the custom call then reads and
writes 8 bytes per element into 4-byte buffers (a crash, or garbage), and the ``step`` wrapper
refuses float32 actions. Turning x64 on would change every dtype of every program.

Instead :func:`xla` declares each float64 buffer as ``uint32 [..., 2]`` (the same bytes: low word,
high word on a little-endian host) and converts at the boundary with integer and float32
arithmetic only: :func:`f32_to_f64_words` (exact) for actions, :func:`f64_words_to_f32` (rounded to
nearest float32 like numpy's cast; subnormal float32 results flush to zero) for observations and
rewards. Pools without float64 arrays (Atari, classic control) use envpool's own
interface unchanged.
"""
from __future__ import annotations

import sys

import jax
import jax.numpy as jnp
import numpy as np
from jax import ffi


def f32_to_f64_words(x):
    """float32 ``[...]`` -> uint32 ``[..., 2]``: the float64 of the same value, as (low, high) words.

    Exact for every finite float32 (subnormals flush to signed zero); +-inf and nan map to float64
    +-inf and nan.
    """
    bits = jax.lax.bitcast_convert_type(jnp.asarray(x, jnp.float32), jnp.uint32)
    sign = bits & jnp.uint32(0x80000000)
    exp = (bits >> 23) & jnp.uint32(0xFF)
    mant = bits & jnp.uint32(0x7FFFFF)
    exp64 = jnp.where(exp == 0xFF, jnp.uint32(0x7FF), exp + jnp.uint32(1023 - 127))
    high = jnp.where(exp == 0, sign, sign | (exp64 << 20) | (mant >> 3))
    low = jnp.where(exp == 0, jnp.uint32(0), (mant & jnp.uint32(7)) << 29)
    return jnp.stack([low, high], axis=-1)


def f64_words_to_f32(words):
    """uint32 ``[..., 2]`` (the (low, high) words of float64 values) -> float32 ``[...]``.

    Integer arithmetic on the bits: the 52-bit mantissa rounded to 23 bits, to nearest with ties to
    even (numpy's cast), a carry moving into the exponent. Values beyond float32's range become
    +-inf, below its normal range +-0 (subnormals flush); inf and nan stay inf and nan.
    """
    low, high = words[..., 0], words[..., 1]
    sign = high & jnp.uint32(0x80000000)
    exp = ((high >> 20) & jnp.uint32(0x7FF)).astype(jnp.int32)
    mant = ((high & jnp.uint32(0xFFFFF)) << 3) | (low >> 29)  # the top 23 of 52 mantissa bits
    rest = low & jnp.uint32(0x1FFFFFFF)  # the 29 bits rounded away
    half = jnp.uint32(0x10000000)
    mant = mant + ((rest > half) | ((rest == half) & ((mant & 1) == 1))).astype(jnp.uint32)
    exp32 = exp - (1023 - 127)
    bits = (jnp.clip(exp32, 0, 255).astype(jnp.uint32) << 23) + mant  # a rounding carry bumps the exponent
    bits = jnp.where(exp32 >= 255, jnp.uint32(0x7F800000), jnp.where(exp32 <= 0, jnp.uint32(0), bits))
    nan = (mant != 0) | (rest != 0)
    bits = jnp.where(exp == 0x7FF, jnp.where(nan, jnp.uint32(0x7FC00000), jnp.uint32(0x7F800000)), bits)
    return jax.lax.bitcast_convert_type(sign | bits, jnp.float32)


def has_float64(pool) -> bool:
    return any(np.dtype(dt) == np.float64 for _, (_, specs, _) in pool._xla() for side in specs for dt, _ in side)


def _declared(dtype, shape):
    """The JAX type a buffer is declared with: float64 as uint32 word pairs, others as they are."""
    if np.dtype(dtype) == np.float64:
        return jax.ShapeDtypeStruct(tuple(shape) + (2,), jnp.uint32)
    return jax.ShapeDtypeStruct(tuple(shape), np.dtype(dtype))


def _ffi(pool, name, handle, specs, capsules):
    ins, outs = specs
    target = f"jaxrl_f64_{type(pool).__name__}_{id(pool)}_{name}"
    ffi.register_ffi_target(target, capsules[0], platform="cpu", api_version=1)
    results = tuple(_declared(*o) for o in outs)
    layouts = tuple(tuple(range(len(r.shape))) for r in results)
    call = ffi.ffi_call(target, results if len(results) > 1 else results[0], has_side_effect=True,
                        input_layouts=tuple(tuple(range(len(_declared(*i).shape))) for i in ins),
                        output_layouts=layouts if len(results) > 1 else layouts[0], input_output_aliases={0: 0})
    value = int.from_bytes(handle, byteorder=sys.byteorder, signed=False)
    return lambda *args: call(*args, handle=value), [np.dtype(dt) == np.float64 for dt, _ in ins], \
        [np.dtype(dt) == np.float64 for dt, _ in outs]


def xla(pool):
    """``(handle, recv, send, step)`` like ``pool.xla()``, with float64 buffers carried as uint32 words.

    ``step(handle, action)`` takes float32 actions and returns envpool's ``(obs, reward, terminated,
    truncated, info)`` with float32 in place of float64.
    """
    if sys.byteorder != "little":
        raise RuntimeError("envpool float64 pools need a little-endian host")
    native = dict(pool._xla())
    _recv, _, recv64 = _ffi(pool, "recv", *native["recv"])
    _send, send64, _ = _ffi(pool, "send", *native["send"])

    def recv(handle):
        out = _recv(handle)
        state = [f64_words_to_f32(x) if wide else x for x, wide in zip(out[1:], recv64[1:])]
        return out[0], pool._to(state, reset=False, return_info=True)

    def send(handle, action, env_id=None):
        arrays = pool._from(action, env_id)
        return _send(handle, *[f32_to_f64_words(a) if wide else jnp.asarray(a) for a, wide in zip(arrays, send64[1:])])

    def step(handle, action, env_id=None):
        return recv(send(handle, action, env_id))

    return np.frombuffer(native["recv"][0], dtype=np.uint8), recv, send, step
