"""Replay buffers as pytrees with pure functions (optax-style ``init``/``add``/``sample``).

* :mod:`jaxrl.buffers.uniform`: uniform circular replay, time-major per env.
* :mod:`jaxrl.buffers.prioritized`: proportional prioritized replay over :mod:`jaxrl.buffers.sum_tree`.
* :func:`memory_bytes` / :func:`check_memory`: the size of a buffer, checked against the memory
  available *before* anything is allocated.
"""
from __future__ import annotations

import os

import numpy as np

from jaxrl.buffers import prioritized, sum_tree, uniform
from jaxrl.buffers.uniform import Indices, ReplayState, gather, window
from jaxrl.config import ConfigError

MEM_ENV_VAR = "JAXRL_MEM_AVAILABLE"  # bytes; overrides /proc/meminfo (tests, containers)


def row_bytes(example_row) -> int:
    """Bytes of one transition per env: the sum over leaves of ``size * itemsize`` (per env)."""
    import jax

    leaves = jax.tree_util.tree_leaves(example_row)
    return int(sum(np.dtype(x.dtype).itemsize * int(np.prod(np.shape(x))) for x in leaves))


def memory_bytes(example_row, capacity: int, num_envs: int, prioritized: bool = False) -> int:
    """Bytes the buffer allocates. ``example_row`` has leaves ``[num_envs, ...]`` (arrays or ShapeDtypeStructs)."""
    rows = uniform.rows_for(capacity, num_envs)
    total = rows * row_bytes(example_row)
    if prioritized:
        total += 2 * sum_tree.tree_size(rows * num_envs) * 4 + rows * num_envs * 4
    return total


def available_memory() -> int | None:
    """Bytes available: ``$JAXRL_MEM_AVAILABLE`` if set, else MemAvailable of /proc/meminfo, else None."""
    if os.environ.get(MEM_ENV_VAR):
        return int(float(os.environ[MEM_ENV_VAR]))
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _gib(b: float) -> str:
    return f"{b / 2 ** 30:.2f} GiB"


def check_memory(needed: int, buffer_size: int, num_envs: int, copies: int = 1, fraction: float = 0.8) -> None:
    """Raise a one-line :class:`ConfigError` naming ``buffer_size`` when ``copies`` buffers would not fit."""
    avail = available_memory()
    if avail is None:
        return
    total = needed * copies
    if total > fraction * avail:
        per = needed / max(1, buffer_size)
        raise ConfigError("buffer_size", f"replay needs {_gib(total)} ({copies} x buffer_size={buffer_size} x "
                                         f"{per:.0f} bytes per transition, num_envs={num_envs}) but only "
                                         f"{_gib(avail)} is available; lower buffer_size (or the number of seeds)")


__all__ = ["uniform", "prioritized", "sum_tree", "Indices", "ReplayState", "gather", "window", "row_bytes",
           "memory_bytes", "available_memory", "check_memory", "MEM_ENV_VAR"]
