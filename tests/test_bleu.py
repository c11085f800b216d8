"""BLEU on device against nltk's ``sentence_bleu`` (method-1 smoothing), to 1e-6, and its padding rules."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

from jaxrl.envs.dialogue.bleu import batch_bleu, lengths, ngram_counts
from jaxrl.envs.dialogue.bleu import sentence_bleu as device_bleu

EOS = 2
T = 14


def nltk_bleu(hyp, ref, order=4, epsilon=0.1):
    sf = SmoothingFunction(epsilon=epsilon).method1
    return sentence_bleu([list(ref)], list(hyp), weights=(1.0 / order,) * order, smoothing_function=sf)


def _padded(seq):
    out = np.zeros(T, np.int32)
    out[:len(seq)] = seq
    if len(seq) < T:
        out[len(seq)] = EOS
    return out


BLEU = jax.jit(batch_bleu, static_argnums=(2, 3, 4))


def _device(pairs, order=4, epsilon=0.1):
    h = np.stack([_padded(a) for a, _ in pairs])
    r = np.stack([_padded(b) for _, b in pairs])
    return np.asarray(BLEU(h, r, EOS, order, epsilon))


HAND = [
    ([5, 6, 7, 8], [5, 6, 7, 8]),  # identical: 1
    ([], [5, 6]),  # empty reply: 0
    ([9, 9, 9, 9], [5, 6, 7, 8]),  # no unigram match: 0
    ([5, 5, 5, 5, 5, 5, 5], [5, 6, 5, 7]),  # "the the the ...": clipped to the reference's count
    ([5, 6], [5, 6]),  # shorter than 4: smoothed higher orders
    ([5], [5]),
    ([5, 6, 7, 8, 9, 10, 11], [5, 6, 7]),  # longer than the reference: no brevity penalty
    ([5, 6, 7], [5, 6, 7, 8, 9, 10, 11, 12]),  # shorter: brevity penalty
    ([5, 6, 5, 6, 5, 6], [6, 5, 6, 5, 6, 5]),  # repeated bigrams, clipped per distinct n-gram
    ([7, 5, 6, 8, 5, 6, 9], [5, 6, 7, 8, 5, 6]),
]


@pytest.mark.parametrize("order", [4, 2])
def test_hand_built_pairs_match_nltk(order):
    got = _device(HAND, order)
    want = [nltk_bleu(a, b, order) for a, b in HAND]
    np.testing.assert_allclose(got, want, atol=1e-6, rtol=0)
    assert got[0] == pytest.approx(1.0) and got[1] == 0.0 and got[2] == 0.0


@pytest.mark.parametrize("order, epsilon", [(4, 0.1), (2, 0.1), (3, 0.01), (1, 0.1)])
def test_random_pairs_match_nltk(order, epsilon):
    rng = np.random.default_rng(order)
    pairs = []
    for _ in range(400):
        v = int(rng.integers(5, 9))  # few distinct words: many partial matches and repeats
        pairs.append((rng.integers(4, v, int(rng.integers(0, T))).tolist(),
                      rng.integers(4, v, int(rng.integers(1, T))).tolist()))
    got = _device(pairs, order, epsilon)
    want = np.asarray([nltk_bleu(a, b, order, epsilon) for a, b in pairs])
    assert (want > 0).mean() > 0.5 and (want == 1.0).sum() < len(want)  # a real spread of scores
    np.testing.assert_allclose(got, want, atol=1e-6, rtol=0)


def test_tokens_after_the_end_never_count():
    """Whatever follows ``</s>`` (or padding) in the reply or the reference leaves the score unchanged."""
    rng = np.random.default_rng(0)
    hyp, ref = _padded([5, 6, 7, 5]), _padded([5, 6, 7, 8, 9])
    h, r = np.tile(hyp, (20, 1)), np.tile(ref, (20, 1))
    h[:, 5:] = rng.integers(4, 9, (20, T - 5))
    r[:, 6:] = rng.integers(0, 9, (20, T - 6))
    got = np.asarray(BLEU(np.r_[hyp[None], h], np.r_[ref[None], r], EOS, 4, 0.1))
    assert 0 < got[0] < 1 and np.all(got == got[0])
    # explicit lengths: tokens past them are ignored too
    junk = jnp.asarray(np.r_[[5, 6, 7, 5], rng.integers(4, 9, 6)])
    assert float(jax.jit(device_bleu)(junk, 4, jnp.asarray(ref), 5)) == pytest.approx(float(got[0]), abs=1e-7)


def test_lengths_and_counts():
    toks = jnp.asarray([[5, 6, 2, 7], [5, 0, 0, 0], [5, 6, 7, 8], [2, 5, 5, 5]])
    assert lengths(toks, EOS).tolist() == [2, 1, 4, 0]
    m, tot = jax.jit(ngram_counts, static_argnums=4)(jnp.asarray([5, 5, 6, 5]), 4, jnp.asarray([5, 6, 5, 9]), 3, 3)
    assert m.tolist() == [3, 2, 1] and tot.tolist() == [4, 3, 2]  # unigram 5 clipped to its 2 in the reference
