"""Replay buffers as pytrees with pure functions (optax-style ``init``/``add``/``sample``).

* :mod:`jaxrl.buffers.uniform`: uniform circular replay, time-major per env.
* :mod:`jaxrl.buffers.prioritized`: proportional prioritized replay over :mod:`jaxrl.buffers.sum_tree`.

A buffer lives in the agent state, so the driver's one memory check
(:func:`jaxrl.driver.guards.check_memory`) sizes it with the rest of the state before anything is
allocated, and names ``buffer_size`` when the buffer is what does not fit.
"""
from __future__ import annotations

from jaxrl.buffers import prioritized, sum_tree, uniform
from jaxrl.buffers.uniform import Indices, ReplayState, gather, window

__all__ = ["uniform", "prioritized", "sum_tree", "Indices", "ReplayState", "gather", "window"]
