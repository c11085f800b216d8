"""jaxrl.rng: the permutation helper that PPO shuffles minibatches with."""
import jax
import numpy as np
import pytest

from jaxrl import rng


@pytest.mark.parametrize("n", [1, 7, 512, 5000])
def test_permutations_are_permutations_and_look_uniform(n):
    p = np.asarray(rng.permutations(jax.random.key(0), 3, n))
    assert p.shape == (3, n) and p.dtype == np.int32
    for row in p:
        np.testing.assert_array_equal(np.sort(row), np.arange(n))
    if n == 7:
        # position of element 0 over many permutations: uniform over the 7 slots (chi-square, 6 dof)
        many = np.asarray(rng.permutations(jax.random.key(1), 7000, 7))
        counts = np.bincount(np.argmax(many == 0, axis=1), minlength=7)
        chi2 = ((counts - 1000) ** 2 / 1000).sum()
        assert chi2 < 22.5, counts  # p = 0.001
    if n == 512:
        assert not (p[0] == p[1]).all()  # independent rows
