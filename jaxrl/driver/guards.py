"""What stops a run early: signals, the wall-clock budget, divergence, and memory that does not fit.

* :class:`StopFlag`: SIGINT/SIGTERM ask the loop to stop at the next chunk boundary (a second
  SIGINT aborts at once); ``--max-minutes`` does the same when the budget is spent.
* :func:`nan_guard`: a non-finite metric or state value stops the run (:class:`Diverged`, exit 3),
  naming the metric (or state array), the update and the batch member.
* :func:`check_memory`: the state of every batch member must fit the device before anything is
  allocated; the message names the biggest array and the field that sizes it. This is the one memory
  check of jaxrl (replay buffers included).
"""
from __future__ import annotations

import math
import os
import sys
import time
from typing import Optional

import numpy as np

from jaxrl.config import ConfigError

MEM_ENV_VAR = "JAXRL_MEM_AVAILABLE"  # bytes; overrides what the host reports (tests, containers)


class RunStopped(Exception):
    """The run stopped before the end; ``str(e)`` is one line and ``exit_code`` the CLI status."""

    exit_code = 1


class Interrupted(RunStopped):
    """SIGINT/SIGTERM: the current chunk finished and a checkpoint was saved. Exit 128 + signal."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.exit_code = 128 + int(signum)


class Diverged(RunStopped):
    """A non-finite metric or state value. The last good checkpoint is kept. Exit status 3."""

    exit_code = 3


class StopFlag:
    """SIGINT/SIGTERM handler plus an optional deadline (``max_minutes`` of training in this session).

    ``reason`` is None while the run may continue, else ``"SIGINT"``, ``"SIGTERM"`` or ``"max_minutes"``.
    """

    def __init__(self, max_minutes: Optional[float] = None):
        self.signum = None
        self.deadline = None if max_minutes is None else max_minutes * 60.0
        self.started = None
        self._old = {}

    def start_clock(self) -> None:
        self.started = time.perf_counter()

    @property
    def reason(self) -> Optional[str]:
        import signal

        if self.signum is not None:
            return signal.Signals(self.signum).name
        if self.deadline is not None and self.started is not None and \
                time.perf_counter() - self.started >= self.deadline:
            return "max_minutes"
        return None

    def __enter__(self):
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        import signal

        if self.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signum = signum
        print(f"\njaxrl: {signal.Signals(signum).name}: finishing the current chunk and saving a checkpoint "
              f"(Ctrl-C again aborts without saving)", file=sys.stderr, flush=True)

    def __exit__(self, *exc):
        import signal

        for sig, old in self._old.items():
            signal.signal(sig, old)
        return False


def member(meta: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in meta.items())


def nan_guard(first_bad: dict, finite: Optional[np.ndarray], end: int, rows_meta, leaf_paths, last_saved) -> None:
    """Raise :class:`Diverged` naming the first non-finite metric (or state array), its update and member.

    first_bad: metric -> int array ``[B]`` (first bad update index, -1 if none); finite: bool ``[B, leaves]``.
    """
    keep = f"; last good checkpoint {last_saved}" if last_saved else "; no checkpoint was saved yet"
    first_bad = {k: np.asarray(v, np.int64) for k, v in first_bad.items()}
    bad = [(int(np.where(v >= 0, v, np.iinfo(np.int64).max).min()), k) for k, v in sorted(first_bad.items())
           if (v >= 0).any()]
    if bad:
        upd, k = min(bad)
        b = int(np.argmax(np.asarray(first_bad[k]) == upd))
        raise Diverged(f"non-finite {k} at update {upd + 1} ({member(rows_meta[b])}); stopped{keep}")
    if finite is not None and not finite.all():
        b, leaf = (int(i) for i in np.argwhere(~finite)[0])
        name = leaf_paths[leaf] if leaf < len(leaf_paths) else f"leaf {leaf}"
        raise Diverged(f"non-finite state value {name} after update {end} ({member(rows_meta[b])}); stopped{keep}")


# ---------------------------------------------------------------------------------- memory
def available_bytes(budget_gb: Optional[float] = None) -> float:
    """``budget_gb`` GiB; else the default device's memory limit (GPU/TPU), or on CPU the host memory
    available now (``$JAXRL_MEM_AVAILABLE``, /proc/meminfo's MemAvailable, else 80% of RAM)."""
    if budget_gb is not None:
        return budget_gb * 2**30
    if os.environ.get(MEM_ENV_VAR):
        return float(os.environ[MEM_ENV_VAR])
    import jax

    try:
        stats = jax.devices()[0].memory_stats() or {}
        if stats.get("bytes_limit"):
            return float(stats["bytes_limit"])
    except Exception:  # backends without memory_stats
        pass
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024.0
    except OSError:
        pass
    try:
        return 0.8 * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return float("inf")


def leaf_bytes(x) -> int:
    import jax

    if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
        return math.prod(x.shape) * 8
    return math.prod(x.shape) * np.dtype(x.dtype).itemsize


def tree_bytes(tree) -> int:
    """Bytes of every leaf of ``tree`` (arrays or ShapeDtypeStructs; a PRNG key counts 8 bytes)."""
    import jax

    return sum(leaf_bytes(x) for x in jax.tree_util.tree_leaves(tree))


def check_memory(state_shape, batch: int, budget_gb: Optional[float] = None, fraction: float = 0.9) -> None:
    """Refuse a run whose state (all ``batch`` members) exceeds ``fraction`` of the available memory."""
    import jax

    need = tree_bytes(state_shape)
    budget = available_bytes(budget_gb) * (1.0 if budget_gb is not None else fraction)
    if need <= budget:
        return
    leaves = jax.tree_util.tree_flatten_with_path(state_shape)[0]  # only to name the largest array
    path, big = max(leaves, key=lambda pl: leaf_bytes(pl[1]))
    name = jax.tree_util.keystr(path)
    field = "buffer_size" if "buffer" in name else "memory"
    fix = ("lower buffer_size, num_envs or num_seeds" if field == "buffer_size"
           else "lower num_envs, the network size or num_seeds")
    raise ConfigError(field, f"the training state needs {need / 2**30:.2f} GiB for {batch} run(s) "
                             f"({need / batch / 2**30:.3f} GiB each; the largest array, {name}, "
                             f"{leaf_bytes(big) / 2**30:.2f} GiB), more than the {budget / 2**30:.2f} GiB "
                             f"available; {fix} (or set --memory-budget GiB)")
