"""Flax networks. Initializers in :mod:`jaxrl.networks.init` are LAPACK-free and safe to vmap.

Module graph (no cycles): ``init``, ``conv`` <- ``torsos`` <- ``mlp`` (ActorCritic), ``q_networks``.
"""
from jaxrl.networks.init import orthogonal
from jaxrl.networks.mlp import ActorCritic
from jaxrl.networks.q_networks import NoisyDense, QNetwork
from jaxrl.networks.torsos import MLP, NatureCNN

__all__ = ["orthogonal", "MLP", "ActorCritic", "NatureCNN", "NoisyDense", "QNetwork"]
