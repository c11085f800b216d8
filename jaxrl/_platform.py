"""Process-wide CPU defaults that jaxrl applies when it is imported (measured, documented in docs/performance.md).

1. ``--xla_cpu_multi_thread_eigen=false`` is appended to ``XLA_FLAGS`` unless the user already
   sets that flag.  On a 2-core CPU, Eigen's intra-op threads cost more than they give on RL-sized
   matrices (PPO CartPole 1 seed: about 97k -> 119k steps/s in our A/B; PureJaxRL saw the same).
   It must be set before JAX initialises its CPU backend, so import jaxrl before running any JAX
   computation.  It affects only the CPU backend.
2. ``--xla_cpu_enable_concurrency_optimized_scheduler=false`` (unless set).  The default
   schedule orders a loop body so that independent kernels can run at once, and XLA:CPU's thunk
   executor then hands some of them to another thread.  RL kernels take microseconds, so each
   hand-off (a thread wake-up) costs more than it saves: a chunk of PPO CartPole updates
   (1 seed, 4 envs) kept 1.45 cores busy with 17 context switches per update and ran 13% slower
   than with this flag (160k -> 185k steps/s; ``jaxrl train ppo``, 1 seed: 148k -> 166k).
   8 seeds sharded over the cores, DQN and A2C measured the same or faster with it; DQN's
   reference benchmark (10 envs, a gradient step per update) lost 7-12%.  It also prevents the
   LAPACK QR deadlock (docs/performance.md), which jaxrl avoids by construction anyway.
3. ``--xla_force_host_platform_device_count=<number of CPU cores>`` (unless set): every core is
   an XLA CPU device, so ``--devices all`` (the default) shards seeds and sweep points over
   the cores (:mod:`jaxrl.parallel`), one program per core.  XLA:CPU otherwise runs a vmapped
   batch on one core for small matrices: PPO CartPole, 8 seeds on 2 cores, went from about
   224k to 475k steps/s.  A single seed cannot be split, and envpool stays on one device.
4. The Threefry PRNG is lowered **unrolled** on CPU (:func:`threefry_choice` says which lowering
   is in use and why; ``jaxrl profile`` prints it).  JAX's CPU lowering is a rolled ``while``
   loop of 5 iterations with dozens of tiny runtime thunks each, and every
   ``split``/``uniform``/``categorical`` pays it: with a few envs per seed that is most of an env
   step.  The unrolled form is the same 20 rounds, so random streams are bit-identical
   (``tests/test_platform.py`` checks this against a process without jaxrl).  It is written with
   an ``optimization_barrier`` after each of the first 4 key injections: from jax 0.11 on, XLA:CPU
   keeps the barriers through fusion, so fused kernels stay a few rounds long.  Without them (JAX's
   own unrolled rule, which jaxrl registered up to 2026-12) a split followed by a draw became one
   fusion of 40 add-rotate-xor rounds, and the LLVM of jaxlib 0.11/0.12 never finished compiling
   it (the compiling thread stays in the loop vectorizer's recursive ``vputils::onlyFirstLaneUsed``,
   whose walk over use paths grows with each round).  jax 0.10.2 drops the barriers before fusion, which is harmless with
   its LLVM.  The lowering is used only on the JAX releases where it was measured
   (``UNROLLED_JAX``, docs/performance.md); elsewhere, or without the private JAX internals it
   registers through, jaxrl keeps JAX's own lowering.

Opt out with ``JAXRL_XLA_DEFAULTS=0`` (the three flags) and ``JAXRL_FAST_THREEFRY=0`` (lowering);
``JAXRL_FAST_THREEFRY=force`` tries the unrolled lowering on a JAX release outside ``UNROLLED_JAX``.
Neither is needed for correctness: the XLA:CPU deadlock of vmapped LAPACK QR is avoided by
construction (:mod:`jaxrl.networks.init`), not by flags.
"""
from __future__ import annotations

import os
import re
import warnings

EIGEN_FLAG = "--xla_cpu_multi_thread_eigen"
SCHEDULER_FLAG = "--xla_cpu_enable_concurrency_optimized_scheduler"
DEVICES_FLAG = "--xla_force_host_platform_device_count"
THREEFRY_ENV = "JAXRL_FAST_THREEFRY"
UNROLLED_JAX = ((0, 10, 2), (0, 13))  # [first, end) of the JAX releases the unrolled lowering was measured on
_done = False
_threefry = {"lowering": "jax", "reason": "jaxrl not configured"}


def configure() -> None:
    global _done
    if _done:
        return
    _done = True
    if os.environ.get("JAXRL_XLA_DEFAULTS", "1") != "0":
        flags = os.environ.get("XLA_FLAGS", "")
        for flag, value in ((EIGEN_FLAG, "false"), (SCHEDULER_FLAG, "false"), (DEVICES_FLAG, os.cpu_count() or 1)):
            if flag not in flags:  # the user's own setting wins
                flags = f"{flags} {flag}={value}"
        os.environ["XLA_FLAGS"] = flags.strip()
    _threefry.update(_configure_threefry(os.environ.get(THREEFRY_ENV, "1")))


def threefry_choice() -> dict:
    """``{"lowering": "unrolled" | "jax", "reason": str}``: the CPU Threefry lowering in use and why."""
    return dict(_threefry)


def report() -> dict:
    """What this process runs on: JAX versions, the Threefry lowering and ``XLA_FLAGS`` (``jaxrl profile``)."""
    import jax
    import jaxlib

    return {"jax": jax.__version__, "jaxlib": jaxlib.__version__, "threefry": threefry_choice(),
            "XLA_FLAGS": os.environ.get("XLA_FLAGS", "")}


def version_tuple(version: str) -> tuple:
    """``"0.12.0.1"`` -> ``(0, 12, 0, 1)``; ``"0.13.0.dev20261201"`` -> ``(0, 13, 0)``."""
    m = re.match(r"\d+(\.\d+)*", version)
    return tuple(int(p) for p in m.group().split(".")) if m else ()


def choose_threefry(setting: str, versions: dict) -> tuple[str, str]:
    """``(lowering, reason)`` for ``JAXRL_FAST_THREEFRY=setting`` and ``{"jax": "0.12.0.1", "jaxlib": ...}``."""
    have = ", ".join(f"{k} {v}" for k, v in versions.items())
    if setting == "0":
        return "jax", f"{THREEFRY_ENV}=0"
    if setting == "force":
        return "unrolled", f"{THREEFRY_ENV}=force on {have}"
    if setting != "1":
        return "jax", f"{THREEFRY_ENV}={setting!r} is not 0, 1 or force"
    lo, hi = UNROLLED_JAX
    if all(lo <= version_tuple(v) < hi for v in versions.values()):
        return "unrolled", f"{have}: measured"
    span = f"{'.'.join(map(str, lo))} <= version < {'.'.join(map(str, hi))}"
    return "jax", f"{have}: not measured (the unrolled lowering is used for {span}; {THREEFRY_ENV}=force tries it)"


def _configure_threefry(setting: str) -> dict:
    import jax
    import jaxlib

    versions = {"jax": jax.__version__, "jaxlib": jaxlib.__version__}
    lowering, reason = choose_threefry(setting, versions)
    if lowering == "unrolled":
        try:
            _register_unrolled()
        except (ImportError, AttributeError, TypeError) as e:  # a JAX version without these internals
            lowering, reason = "jax", f"the unrolled lowering needs JAX internals that jax {jax.__version__} lacks ({e})"
            warnings.warn(f"jaxrl: {reason}; using JAX's own Threefry lowering")
    return {"lowering": lowering, "reason": reason}


ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))


def threefry2x32_unrolled(k1, k2, x1, x2):
    """Threefry-2x32 (20 rounds), JAX's schedule, an ``optimization_barrier`` after each key injection
    but the last (the fusion boundaries of the module docstring).  Arrays broadcast; returns (y1, y2)."""
    import numpy as np
    from jax import lax

    def rotl(v, d):
        return lax.shift_left(v, np.uint32(d)) | lax.shift_right_logical(v, np.uint32(32 - d))

    ks = (k1, k2, k1 ^ k2 ^ np.uint32(0x1BD11BDA))
    x = (x1 + ks[0], x2 + ks[1])
    for i in range(5):
        for r in ROTATIONS[i % 2]:
            y0 = x[0] + x[1]
            x = (y0, rotl(x[1], r) ^ y0)
        x = (x[0] + ks[(i + 1) % 3], x[1] + ks[(i + 2) % 3] + np.uint32(i + 1))
        if i < 4:
            x = tuple(lax.optimization_barrier(x))
    return x


def _register_unrolled() -> None:
    from jax._src.interpreters import mlir
    from jax._src.random import threefry2x32 as tf

    rule = mlir.lower_fun(threefry2x32_unrolled, multiple_results=True)
    mlir.register_lowering(tf.threefry2x32_p, rule, platform="cpu")
