"""An encoder-decoder over token ids (LSTM or GRU, optional attention) and its decoders as pure
functions over ``lax.scan``: teacher forcing, greedy decoding, sampling with a temperature, beam search.

The flax module :class:`Seq2Seq` only defines single steps (``encode_step``, ``decode_step``); the
loops are the functions below, each ``f(model, params, inputs [B, L], ...)``, so they jit, vmap over
seeds and differentiate like any JAX function. Token ids follow :mod:`jaxrl.envs.dialogue.data`:
0 padding, 1 ``<s>`` (the decoder's first input), 2 ``</s>``, 3 ``<unk>``; the decoder never emits 0, 1
or 3 (a reply of ``<unk>`` would say nothing; losses leave ``<unk>`` targets out).

* Encoder: embeddings then a recurrent cell over the input; padding leaves the state unchanged (so the
  final state is the state after the last word) and is masked out of attention.
* Decoder: starts from the encoder's final state; with ``attention`` (Luong's "general" score
  ``h_t^T W e_s``), each step's output is ``tanh(W_c [h_t; context])``; logits over the vocabulary.
* A reply ends at its first ``</s>``: decoders write padding after it, and losses mask it out
  (:func:`reply_mask`).
"""
from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp


PAD, BOS, EOS, UNK = 0, 1, 2, 3
NEVER = (PAD, BOS, UNK)  # tokens the decoder never emits
NEG = -1e9


class Seq2Seq(nn.Module):
    vocab_size: int
    embed_dim: int = 64
    hidden: int = 256
    cell: str = "lstm"  # "lstm" | "gru"
    attention: bool = False

    def setup(self):
        self.embed = nn.Embed(self.vocab_size, self.embed_dim)
        kw = dict(features=self.hidden, recurrent_kernel_init=nn.initializers.lecun_normal())
        make = nn.OptimizedLSTMCell if self.cell == "lstm" else nn.GRUCell
        self.enc_cell, self.dec_cell = make(**kw), make(**kw)
        if self.attention:
            self.score = nn.Dense(self.hidden, use_bias=False)
            self.combine = nn.Dense(self.hidden)
        self.out = nn.Dense(self.vocab_size)

    def zero_carry(self, batch: int):
        z = jnp.zeros((batch, self.hidden), jnp.float32)
        return (z, z) if self.cell == "lstm" else z

    def encode_step(self, carry, token):
        """One input token ``[B]``: ``(carry, output h [B, H])``; padding keeps the carry."""
        new, h = self.enc_cell(carry, self.embed(token))
        keep = (token == PAD)[:, None]
        carry = jax.tree_util.tree_map(lambda n, o: jnp.where(keep, o, n), new, carry)
        return carry, h

    def decode_step(self, carry, token, memory, mask):
        """One decoder step from the previous token ``[B]``: ``(carry, logits [B, V])``.
        memory ``[B, L, H]`` (encoder outputs), mask ``[B, L]`` (True on words)."""
        carry, h = self.dec_cell(carry, self.embed(token))
        if self.attention:
            scores = jnp.einsum("blh,bh->bl", memory, self.score(h))
            weights = jax.nn.softmax(jnp.where(mask, scores, NEG), -1)
            h = jnp.tanh(self.combine(jnp.concatenate([h, jnp.einsum("bl,blh->bh", weights, memory)], -1)))
        logits = self.out(h)
        return carry, logits.at[:, list(NEVER)].set(NEG)

    def __call__(self, inputs):
        """Touches every parameter once (for ``init``): logits of the first reply token ``[B, V]``."""
        carry, h = self.encode_step(self.zero_carry(inputs.shape[0]), inputs[:, 0])
        return self.decode_step(carry, jnp.full(inputs.shape[:1], BOS), h[:, None], inputs[:, :1] != PAD)[1]


def encode(model: Seq2Seq, params, inputs):
    """inputs ``[B, L]`` -> (final carry, memory ``[B, L, H]``, mask ``[B, L]``)."""
    def step(carry, tok):
        return model.apply(params, carry, tok, method=Seq2Seq.encode_step)

    carry, hs = jax.lax.scan(step, model.zero_carry(inputs.shape[0]), inputs.T)
    return carry, jnp.swapaxes(hs, 0, 1), inputs != PAD


def _decode_loop(model, params, inputs, length: int, choose, xs=None):
    """Runs the decoder ``length`` steps; ``choose(logits, x_t, t) -> next input token``.
    Returns (logits ``[B, T, V]``, chosen tokens ``[B, T]``)."""
    carry, memory, mask = encode(model, params, inputs)

    def step(c, x):
        carry, prev = c
        t, x_t = x
        carry, logits = model.apply(params, carry, prev, memory, mask, method=Seq2Seq.decode_step)
        tok = choose(logits, x_t, t)
        return (carry, tok), (logits, tok)

    first = jnp.full(inputs.shape[:1], BOS, jnp.int32)
    steps = (jnp.arange(length), xs if xs is not None else jnp.zeros((length,) + inputs.shape[:1], jnp.int32))
    _, (logits, toks) = jax.lax.scan(step, (carry, first), steps)
    return jnp.swapaxes(logits, 0, 1), jnp.swapaxes(toks, 0, 1)


def after_eos(tokens):
    """tokens ``[B, T]`` -> bool ``[B, T]``: positions after the first ``</s>`` (or padding)."""
    stop = (tokens == EOS) | (tokens == PAD)
    return (jnp.cumsum(stop, -1) - stop) > 0


def reply_mask(tokens):
    """float ``[B, T]``: 1 on a reply's words and its ``</s>``, 0 on everything after (padding) and on
    ``<unk>`` (a token the decoder cannot emit)."""
    return (~after_eos(tokens) & (tokens != PAD) & (tokens != UNK)).astype(jnp.float32)


def finish(tokens):
    """Padding after each row's first ``</s>``."""
    return jnp.where(after_eos(tokens), PAD, tokens)


def forced_logits(model, params, inputs, targets, teacher=None):
    """Logits ``[B, T, V]`` of reply ``targets [B, T]``, feeding the decoder ``targets[t-1]`` (teacher
    forcing) or, in rows where ``teacher [B]`` is False, its own previous argmax."""
    tf = jnp.ones(inputs.shape[:1], bool) if teacher is None else teacher

    def choose(logits, x_t, t):
        return jnp.where(tf, x_t, jnp.argmax(logits, -1)).astype(jnp.int32)

    return _decode_loop(model, params, inputs, targets.shape[1], choose, targets.T)[0]


def greedy(model, params, inputs, length: int):
    """The most likely token at every step: replies ``[B, length]`` (padding after ``</s>``)."""
    choose = lambda logits, x_t, t: jnp.argmax(logits, -1).astype(jnp.int32)  # noqa: E731
    return finish(_decode_loop(model, params, inputs, length, choose)[1])


def sample(model, params, inputs, key, length: int, temperature=1.0):
    """Replies ``[B, length]`` drawn from ``softmax(logits / temperature)`` by the Gumbel-max trick
    (``argmax(logits + temperature * g)``): temperature 0 is greedy decoding exactly."""
    gumbel = jax.random.gumbel(key, (length,) + inputs.shape[:1] + (model.vocab_size,))
    choose = lambda logits, g, t: jnp.argmax(logits + temperature * g, -1).astype(jnp.int32)  # noqa: E731
    return finish(_decode_loop(model, params, inputs, length, choose, gumbel)[1])


def sequence_log_prob(logits, tokens, temperature=1.0):
    """Log-probability of each reply under ``softmax(logits / temperature)``: logits ``[B, T, V]``,
    tokens ``[B, T]`` -> ``[B]``, summed over the words and ``</s>`` (padding never counts)."""
    logp = jax.nn.log_softmax(logits / temperature, -1)
    tok = jnp.take_along_axis(logp, tokens[..., None], -1)[..., 0]
    return (tok * reply_mask(tokens)).sum(-1)


def _gather_beams(tree: Any, idx):
    """Leaves ``[B*K, ...]`` reordered by beam index ``idx [B, K]``."""
    b, k = idx.shape
    flat = (idx + jnp.arange(b)[:, None] * k).reshape(-1)
    return jax.tree_util.tree_map(lambda x: x[flat], tree)


def beam_search(model, params, inputs, length: int, beam_size: int):
    """The most likely reply found by a beam of ``beam_size`` per input (total log-probability, no length
    normalisation): replies ``[B, length]``. A beam that has emitted ``</s>`` continues with padding at
    no cost; ``beam_size`` 1 is greedy decoding."""
    b, k, v = inputs.shape[0], beam_size, model.vocab_size
    carry, memory, mask = encode(model, params, inputs)
    rep = lambda x: jnp.repeat(x, k, axis=0)  # noqa: E731
    carry, memory, mask = jax.tree_util.tree_map(rep, carry), rep(memory), rep(mask)
    scores = jnp.where(jnp.arange(k) == 0, 0.0, -jnp.inf) * jnp.ones((b, 1))
    pad_row = jnp.where(jnp.arange(v) == PAD, 0.0, -jnp.inf)
    state = (carry, jnp.full((b * k,), BOS, jnp.int32), scores, jnp.zeros((b, k), bool),
             jnp.zeros((b, k, length), jnp.int32))

    def step(c, t):
        carry, prev, scores, done, toks = c
        carry, logits = model.apply(params, carry, prev, memory, mask, method=Seq2Seq.decode_step)
        logp = jnp.where(done[..., None], pad_row, jax.nn.log_softmax(logits).reshape(b, k, v))
        top, flat = jax.lax.top_k((scores[..., None] + logp).reshape(b, k * v), k)
        beam, tok = flat // v, (flat % v).astype(jnp.int32)
        toks = jnp.take_along_axis(toks, beam[..., None], 1).at[:, :, t].set(tok)
        done = jnp.take_along_axis(done, beam, 1) | (tok == EOS) | (tok == PAD)
        return (_gather_beams(carry, beam), tok.reshape(-1), top, done, toks), None

    (_, _, scores, _, toks), _ = jax.lax.scan(step, state, jnp.arange(length))
    best = jnp.argmax(scores, -1)
    return finish(jnp.take_along_axis(toks, best[:, None, None], 1)[:, 0])
