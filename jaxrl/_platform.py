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
4. The Threefry PRNG is lowered **unrolled** on CPU, as JAX already does on GPU/TPU.  JAX's CPU
   lowering is a rolled ``while`` loop of 5 iterations with dozens of tiny runtime thunks each,
   and every ``split``/``uniform``/``categorical`` pays it: with a few envs per seed that is most
   of an env step.  The unrolled form is the same algorithm, so random streams are bit-identical
   (``tests/test_platform.py`` checks this against a process without jaxrl); the gymnax
   CartPole step loop with 4 envs ran about 3.5x faster.

Opt out with ``JAXRL_XLA_DEFAULTS=0`` (the three flags) and ``JAXRL_FAST_THREEFRY=0`` (lowering).
Neither is needed for correctness: the XLA:CPU deadlock of vmapped LAPACK QR is avoided by
construction (:mod:`jaxrl.networks.init`), not by flags.
"""
from __future__ import annotations

import os
import warnings

EIGEN_FLAG = "--xla_cpu_multi_thread_eigen"
SCHEDULER_FLAG = "--xla_cpu_enable_concurrency_optimized_scheduler"
DEVICES_FLAG = "--xla_force_host_platform_device_count"
_done = False


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
    if os.environ.get("JAXRL_FAST_THREEFRY", "1") != "0":
        try:
            from jax._src.interpreters import mlir
            from jax._src.random import threefry2x32 as tf

            mlir.register_lowering(tf.threefry2x32_p, tf._threefry2x32_lowering_rule, platform="cpu")
        except (ImportError, AttributeError) as e:  # a JAX version without these internals
            warnings.warn(f"jaxrl: unrolled Threefry lowering unavailable ({e}); using JAX's default")
