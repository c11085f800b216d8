"""Sentence BLEU over token-id arrays, on device (jit, vmap): the dialogue env's reward.

Matches ``nltk.translate.bleu_score.sentence_bleu(references=[ref], hypothesis=hyp, weights,
smoothing_function=SmoothingFunction(epsilon).method1)`` (tested to 1e-6):

* modified n-gram precision ``p_n = m_n / max(1, c - n + 1)``: ``m_n`` is the number of hypothesis
  n-grams that appear in the reference, each distinct n-gram clipped to its count there;
* smoothing (nltk's method 1): a precision with no match counts ``epsilon / max(1, c - n + 1)``;
* no unigram match at all: BLEU is 0;
* brevity penalty ``1`` when ``c > r``, else ``exp(1 - r / c)`` (``c``, ``r``: hypothesis and
  reference lengths); ``BLEU = BP * exp(sum_n w_n log p_n)``.

n-grams are compared by equality of token windows (an ``[T, S]`` comparison matrix per order), so
there is no hashing and no host call. Tokens at or past a sequence's length never count: padding
cannot change the score.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp


def lengths(tokens, eos: int, pad: int = 0):
    """Words before the first ``eos`` (or ``pad``) of each row: tokens ``[..., T]`` int -> ``[...]`` int32."""
    stop = (tokens == eos) | (tokens == pad)
    t = tokens.shape[-1]
    return jnp.where(stop.any(-1), jnp.argmax(stop, -1), t).astype(jnp.int32)


def _shift(eq, k: int):
    """``out[i, j] = eq[i + k, j + k]`` (False past the end): ``[T, S]`` bool."""
    if k == 0:
        return eq
    t, s = eq.shape
    out = jnp.zeros_like(eq)
    return out.at[: max(t - k, 0), : max(s - k, 0)].set(eq[k:, k:])


def ngram_counts(hyp, hyp_len, ref, ref_len, order: int = 4):
    """Clipped n-gram matches and hypothesis n-gram counts for n = 1..order.

    hyp ``[T]`` int, ref ``[S]`` int, lengths scalars. Returns ``(matches [order], totals [order])``
    int32, ``totals[n-1] = max(0, hyp_len - n + 1)``.
    """
    hr = hyp[:, None] == ref[None, :]  # [T, S]
    hh = hyp[:, None] == hyp[None, :]  # [T, T]
    i = jnp.arange(hyp.shape[0])
    j = jnp.arange(ref.shape[0])
    earlier = i[None, :] < i[:, None]  # [T, T]: column j before row i
    eq_r, eq_h = hr, hh
    matches, totals = [], []
    for n in range(1, order + 1):
        if n > 1:
            eq_r = eq_r & _shift(hr, n - 1)
            eq_h = eq_h & _shift(hh, n - 1)
        vh = i + n <= hyp_len  # n-gram starting at i lies within the hypothesis
        vr = j + n <= ref_len
        in_ref = (eq_r & vr[None, :]).sum(1)  # [T]: occurrences of hyp n-gram i in the reference
        in_hyp = (eq_h & vh[None, :]).sum(1)  # [T]: occurrences of hyp n-gram i in the hypothesis
        first = vh & ~(eq_h & vh[None, :] & earlier).any(1)  # the first occurrence of each distinct n-gram
        matches.append(jnp.where(first, jnp.minimum(in_hyp, in_ref), 0).sum())
        totals.append(vh.sum())
    return jnp.stack(matches).astype(jnp.int32), jnp.stack(totals).astype(jnp.int32)


def sentence_bleu(hyp, hyp_len, ref, ref_len, order: int = 4, epsilon: float = 0.1, weights=None):
    """BLEU of one hypothesis against one reference (nltk's sentence_bleu with method-1 smoothing).

    hyp ``[T]`` int, ref ``[S]`` int; ``hyp_len``/``ref_len``: words counted (tokens past them are
    ignored); ``weights``: ``order`` floats, uniform by default. Returns a float32 scalar in [0, 1].
    Batch it with ``jax.vmap``.
    """
    w = jnp.full((order,), 1.0 / order, jnp.float32) if weights is None else jnp.asarray(weights, jnp.float32)
    m, tot = ngram_counts(hyp, hyp_len, ref, ref_len, order)
    denom = jnp.maximum(tot, 1).astype(jnp.float32)
    p = jnp.where(m > 0, m.astype(jnp.float32), epsilon) / denom
    c = jnp.asarray(hyp_len, jnp.float32)
    r = jnp.asarray(ref_len, jnp.float32)
    bp = jnp.where(c > r, 1.0, jnp.exp(1.0 - r / jnp.maximum(c, 1.0)))
    score = bp * jnp.exp((w * jnp.log(p)).sum())
    return jnp.where((m[0] > 0) & (c > 0), score, 0.0).astype(jnp.float32)


def batch_bleu(hyps, refs, eos: int, order: int = 4, epsilon: float = 0.1, pad: int = 0):
    """BLEU of each row: hyps ``[N, T]``, refs ``[N, S]`` token ids, each ending at its first ``eos``
    (or ``pad``) -> ``[N]`` float32."""
    f = lambda h, r: sentence_bleu(h, lengths(h, eos, pad), r, lengths(r, eos, pad), order, epsilon)  # noqa: E731
    return jax.vmap(f)(hyps, refs)
