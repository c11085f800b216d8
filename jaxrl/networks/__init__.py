"""Flax networks. Initializers in :mod:`jaxrl.networks.init` are LAPACK-free and safe to vmap."""
from jaxrl.networks.init import orthogonal
from jaxrl.networks.mlp import MLP, ActorCritic

__all__ = ["orthogonal", "MLP", "ActorCritic"]
from jaxrl.networks.q_networks import NatureCNN, NoisyDense, QNetwork  # noqa: E402

__all__ += ["NatureCNN", "NoisyDense", "QNetwork"]
