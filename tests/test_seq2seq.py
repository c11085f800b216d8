"""The seq2seq model and its losses: decoders (temperature-0 sampling is greedy, beam search finds replies at
least as likely as greedy), padding never counts (encoder, loss, log-probability), cross-entropy against a
plain computation, and the SCST gradient against a hand computation on a two-word vocabulary."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxrl.agents.seq2seq import cross_entropy_loss, scst_advantages, scst_loss
from jaxrl.envs.dialogue.bleu import batch_bleu
from jaxrl.networks import seq2seq as s2s

V, L, T, B = 9, 5, 6, 8  # vocabulary (4 specials + 5 words), input length, reply length, batch
CASES = [("lstm", False), ("gru", True)]


def _model(cell, attention, seed=0, vocab=V):
    model = s2s.Seq2Seq(vocab, embed_dim=8, hidden=16, cell=cell, attention=attention)
    params = model.init(jax.random.PRNGKey(seed), jnp.zeros((1, L), jnp.int32))
    # larger output weights: peaked, input-dependent distributions (replies of several lengths)
    params = jax.tree_util.tree_map(lambda x: x * 3.0, params)
    return model, params


def _inputs(seed=1, n=B):
    rng = np.random.default_rng(seed)
    x = rng.integers(4, V, (n, L)).astype(np.int32)
    lens = rng.integers(1, L + 1, n)
    x[np.arange(L)[None, :] >= lens[:, None]] = s2s.PAD
    return jnp.asarray(x)


@pytest.mark.parametrize("cell, attention", CASES)
def test_sampling_at_temperature_zero_is_greedy_decoding(cell, attention):
    model, params = _model(cell, attention)
    x = _inputs()
    greedy = jax.jit(s2s.greedy, static_argnums=(0, 3))(model, params, x, T)
    sampled = jax.jit(s2s.sample, static_argnums=(0, 4))(model, params, x, jax.random.PRNGKey(3), T, 0.0)
    np.testing.assert_array_equal(sampled, greedy)
    hot = s2s.sample(model, params, x, jax.random.PRNGKey(3), T, 1.0)
    assert not np.array_equal(hot, greedy)  # the check above could fail: temperature 1 does sample
    assert not np.isin(np.asarray(greedy), s2s.NEVER[1:]).any()  # never <s> or <unk>
    assert np.all(np.asarray(s2s.after_eos(greedy)) == (np.asarray(greedy) == s2s.PAD))  # padding after </s>


@pytest.mark.parametrize("cell, attention", CASES)
def test_padding_of_the_input_changes_nothing(cell, attention):
    """An input padded to length L is answered as the same words at their own length (encoder carry held on
    padding, attention masked)."""
    model, params = _model(cell, attention)
    words = jnp.asarray([[5, 7, 4]], jnp.int32)
    padded = jnp.pad(words, ((0, 0), (0, L - 3)))
    la = s2s.forced_logits(model, params, words, jnp.full((1, T), 6, jnp.int32))
    lb = s2s.forced_logits(model, params, padded, jnp.full((1, T), 6, jnp.int32))
    np.testing.assert_allclose(la, lb, atol=1e-5)
    other = s2s.forced_logits(model, params, padded.at[0, 3].set(8), jnp.full((1, T), 6, jnp.int32))
    assert np.abs(np.asarray(other) - np.asarray(lb)).max() > 1e-3  # a word there would change it


def test_padding_never_counts_in_the_losses():
    rng = np.random.default_rng(0)
    logits = jnp.asarray(rng.normal(size=(B, T, V)), jnp.float32)
    targets = np.asarray(rng.integers(4, V, (B, T)), np.int32)
    ends = rng.integers(0, T, B)
    targets[np.arange(B), ends] = s2s.EOS
    targets[np.arange(T)[None, :] > ends[:, None]] = s2s.PAD
    junk_logits = jnp.where(jnp.asarray(np.arange(T)[None, :, None] > ends[:, None, None]),
                            100.0 * rng.normal(size=(B, T, V)), logits)
    junk_targets = np.where(targets == s2s.PAD, rng.integers(0, V, (B, T)), targets)  # tokens after </s>
    loss, acc = cross_entropy_loss(logits, jnp.asarray(targets))
    assert cross_entropy_loss(junk_logits, jnp.asarray(targets))[0] == pytest.approx(float(loss), abs=1e-6)
    lp = s2s.sequence_log_prob(logits, jnp.asarray(targets))
    np.testing.assert_allclose(s2s.sequence_log_prob(junk_logits, jnp.asarray(targets)), lp, atol=1e-5)
    np.testing.assert_allclose(s2s.sequence_log_prob(logits, jnp.asarray(junk_targets)), lp, atol=1e-5)
    # against a plain computation: mean NLL over the words and </s> of every reply
    mask = targets != s2s.PAD
    nll = optax.softmax_cross_entropy_with_integer_labels(logits, jnp.asarray(targets))
    assert float(loss) == pytest.approx(float((nll * mask).sum() / mask.sum()), rel=1e-6)
    hits = (np.argmax(np.asarray(logits), -1) == targets) & mask
    assert float(acc) == pytest.approx(hits.sum() / mask.sum())
    logp = jax.nn.log_softmax(logits)
    want = (np.take_along_axis(np.asarray(logp), targets[..., None], -1)[..., 0] * mask).sum(-1)
    np.testing.assert_allclose(lp, want, rtol=1e-6)


@pytest.mark.parametrize("cell, attention", CASES)
def test_beam_search_finds_replies_at_least_as_likely_as_greedy(cell, attention):
    model, params = _model(cell, attention, seed=2)
    x = _inputs(seed=4, n=16)
    beam = jax.jit(s2s.beam_search, static_argnums=(0, 3, 4))
    greedy = s2s.greedy(model, params, x, T)
    np.testing.assert_array_equal(beam(model, params, x, T, 1), greedy)

    def logp(replies):
        return np.asarray(s2s.sequence_log_prob(s2s.forced_logits(model, params, x, replies), replies))

    wide = beam(model, params, x, T, 4)
    lw, lg = logp(wide), logp(greedy)
    # beam search is not guaranteed to beat greedy (the greedy prefix can fall out of the beam), so: almost
    # always at least as likely, sometimes strictly more, and better on average
    assert (lw >= lg - 1e-4).sum() >= 14 and np.any(lw > lg + 1e-3) and lw.mean() > lg.mean(), (lw, lg)


def test_scst_gradient_on_a_two_word_vocabulary_equals_the_hand_computation():
    """A policy that is a free logit table over steps ``[T, V]`` (the same for every input), vocabulary
    {</s>, a, b}. Reference ``a``; two samples ``a </s>`` (BLEU 1) and ``b </s>`` (BLEU 0), greedy reply
    ``b </s>`` (BLEU 0): self-critical advantages (1, 0). The loss ``-mean_k A_k log pi(y_k)`` has gradient
    ``-(1/2) (onehot(y_t) - softmax(logits_t))`` at the two steps of sample ``a </s>`` and none from the
    other; with the group baseline (mean 0.5) the advantages are (0.5, -0.5) and the gradient at step 0
    is ``-(1/4)(onehot(a) - onehot(b))`` (the softmax terms cancel), 0 at step 1."""
    a, b, eos = 4, 5, s2s.EOS
    vocab = 6
    table = jnp.asarray([[0.3, -0.2, 0.1, 0.0, 0.5, 0.7], [0.2, 0.0, 0.4, 0.0, -0.1, 0.3]], jnp.float32)
    table = table.at[:, list(s2s.NEVER)].set(s2s.NEG)
    samples = jnp.asarray([[a, eos], [b, eos]], jnp.int32)  # [K*B = 2, T = 2], one input
    ref = jnp.asarray([[a, eos]], jnp.int32)
    rewards = batch_bleu(samples, jnp.tile(ref, (2, 1)), eos, order=1).reshape(2, 1)
    greedy_r = batch_bleu(jnp.asarray([[b, eos]]), ref, eos, order=1)
    np.testing.assert_allclose(rewards[:, 0], [1.0, 0.0])
    assert float(greedy_r[0]) == 0.0

    def grad(baseline):
        adv = scst_advantages(rewards, greedy_r if baseline == "greedy" else None)
        f = lambda t: scst_loss(s2s.sequence_log_prob(jnp.broadcast_to(t, (2, 2, vocab)), samples).reshape(2, 1),
                                adv)  # noqa: E731
        return np.asarray(jax.grad(f)(table)), np.asarray(adv)

    p = np.asarray(jax.nn.softmax(table, -1))
    onehot = np.eye(vocab)
    g, adv = grad("greedy")
    np.testing.assert_allclose(adv[:, 0], [1.0, 0.0])
    np.testing.assert_allclose(g[0], -0.5 * (onehot[a] - p[0]), atol=1e-6)
    np.testing.assert_allclose(g[1], -0.5 * (onehot[eos] - p[1]), atol=1e-6)
    g, adv = grad("group")
    np.testing.assert_allclose(adv[:, 0], [0.5, -0.5])
    np.testing.assert_allclose(g[0], -0.25 * (onehot[a] - onehot[b]), atol=1e-6)
    np.testing.assert_allclose(g[1], 0.0, atol=1e-6)


def test_scst_advantages_shapes_and_baselines():
    r = jnp.asarray([[0.2, 0.5, 0.0], [0.4, 0.1, 0.0]])  # [K=2, B=3]
    np.testing.assert_allclose(scst_advantages(r, jnp.asarray([0.1, 0.5, 0.3])), [[0.1, 0.0, -0.3], [0.3, -0.4, -0.3]],
                               atol=1e-7)
    np.testing.assert_allclose(scst_advantages(r), [[-0.1, 0.2, 0.0], [0.1, -0.2, 0.0]], atol=1e-7)
    # no gradient through the advantages
    g = jax.grad(lambda adv: scst_loss(jnp.ones((2, 3)), adv))(r)
    np.testing.assert_allclose(g, 0.0)


def test_a_stopped_scst_run_resumes_bit_exact(tmp_path):
    """SCST's state (parameters, optimizer, the data stream's position and keys) is restored from the
    checkpoint: stopping after 3 of 8 updates and resuming ends in the uninterrupted run's state, bit for
    bit, and the same dialogue report (BLEU on both splits). Tiny nets on the reversal task, 2 seeds."""
    from _small_runs import assert_resumes_bit_exact
    from jaxrl.agents import seq2seq
    from jaxrl.driver import RunSpec

    cfg = seq2seq.Config(**dict(seq2seq.PRESETS["scst"], num_envs=8, total_steps=256, hidden=16, embed_dim=8))
    opts = {"num_words": 6, "max_words": 5, "max_len": 6}

    def spec(out):
        return RunSpec("scst", "dialogue:reverse", cfg, num_seeds=2, out=str(out), env_options=opts, eval_episodes=1)

    resumed, ref = assert_resumes_bit_exact(spec, tmp_path, stop_after=3)
    assert ref["num_updates"] == 8 and resumed["dialogue"]["bleu"] == ref["dialogue"]["bleu"]
    assert resumed["bleu"] == resumed["dialogue"]["bleu"] and len(ref["bleu"]["test"]) == 2  # also at the top level
