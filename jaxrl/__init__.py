"""jaxrl: high-throughput reinforcement learning in JAX.

Every algorithm is a pair of pure functions over a pytree state (``jaxrl.agents.<algo>``);
one training run is one compiled program, and seeds and swept hyperparameters are vmap axes.
Importing jaxrl applies measured CPU defaults (see :mod:`jaxrl._platform`).
"""
from jaxrl._platform import configure as _configure

_configure()

__version__ = "0.1.0"
