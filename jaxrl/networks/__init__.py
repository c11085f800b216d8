"""Flax networks and policy heads. Initializers in :mod:`jaxrl.networks.init` are LAPACK-free and safe to vmap.

Module graph (no cycles): ``init``, ``conv`` <- ``torsos`` <- ``mlp`` (ActorCritic), ``q_networks``;
``distributions`` (pure functions, no flax) stands alone.
"""
from jaxrl.networks.distributions import PolicyHead, head_for, policy_head
from jaxrl.networks.init import orthogonal
from jaxrl.networks.mlp import ActorCritic
from jaxrl.networks.q_networks import NoisyDense, QNetwork
from jaxrl.networks.torsos import MLP, NatureCNN

__all__ = ["orthogonal", "MLP", "ActorCritic", "NatureCNN", "NoisyDense", "QNetwork",
           "PolicyHead", "policy_head", "head_for"]
