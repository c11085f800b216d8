"""Seq2seq dialogue model: cross-entropy with teacher forcing, then self-critical sequence training.

The policy is an encoder-decoder (:class:`jaxrl.networks.seq2seq.Seq2Seq`: LSTM or GRU, optional
attention) on a ``dialogue:`` env, whose episode is one reply scored by BLEU (:mod:`jaxrl.envs.dialogue`).
Two objectives, one per training stage (Lapan, *Deep RL Hands-On*, ch. 12):

* ``objective="ce"`` (``jaxrl train seq2seq``): each update draws ``num_envs`` (input, reference) pairs
  and takes one Adam step on the mean token cross-entropy of the references (:func:`cross_entropy_loss`),
  the decoder fed the reference's previous token (teacher forcing) or, for a ``1 - teacher_forcing``
  fraction of the pairs, its own previous argmax. The greedy replies of the batch are scored by the env
  (``episode_return``: training BLEU).
* ``objective="scst"`` (``jaxrl train scst``, usually ``--init-from`` a ``seq2seq`` run): REINFORCE on
  ``num_samples`` sampled replies per input, reward BLEU against the reference, minus a baseline
  (:func:`scst_advantages`): the BLEU of the greedy reply to the same input (``baseline="greedy"``: the
  self-critical baseline of Rennie et al. 2017, arXiv:1612.00563), or the mean reward of the input's
  samples (``baseline="group"``, as in GRPO, Shao et al. 2024). Loss :func:`scst_loss`.

Steps: ``total_steps`` counts replies, per seed: reference replies trained on (``ce``: ``num_envs`` per
update) or sampled replies (``scst``: ``num_envs * num_samples`` per update). ``act`` is greedy
decoding (or beam search with ``beam_size > 1``), so ``eval_return`` is the greedy BLEU on test inputs.
"""
from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxrl.config import Config, ConfigError, field
from jaxrl.core.agent import Agent, episode_sums
from jaxrl.core.optim import gradient_step, optimizer
from jaxrl.envs.core import Env, Tokens
from jaxrl.networks import seq2seq as s2s

DEFAULT_ENV = "dialogue:chatterbot"
PRESETS = {"scst": {"objective": "scst", "lr": 1e-4, "adam_eps": 1e-3, "num_envs": 16, "total_steps": 100_000}}


@dataclasses.dataclass(frozen=True)
class Config(Config):
    objective: str = field("ce", choices=("ce", "scst"), help="ce: cross-entropy (stage 1); scst: REINFORCE on "
                                                             "sampled replies with BLEU reward (stage 2)")
    total_steps: int = field(200_000, low=1, help="replies per seed: references (ce) or sampled replies (scst)")
    num_envs: int = field(32, low=1, help="inputs (dialogue pairs) per update")
    lr: float = field(1e-3, traced=True, low=0.0, low_open=True, help="Adam learning rate")
    adam_eps: float = field(1e-8, traced=True, low=0.0, low_open=True, help="Adam epsilon")
    max_grad_norm: float = field(0.0, traced=True, low=0.0, help="global grad-norm clip (0: none)")
    embed_dim: int = field(64, low=1, help="token embedding size (shared by encoder and decoder)")
    hidden: int = field(256, low=1, help="recurrent state size")
    cell: str = field("lstm", choices=("lstm", "gru"), help="recurrent cell")
    attention: bool = field(False, help="Luong (general) attention over the encoder outputs")
    teacher_forcing: float = field(1.0, traced=True, low=0.0, high=1.0,
                                   help="fraction of pairs fed the reference's previous token, the rest their own "
                                        "argmax (ce; Lapan uses 0.5)")
    num_samples: int = field(4, low=1, help="sampled replies per input (scst)")
    baseline: str = field("greedy", choices=("greedy", "group"),
                          help="scst baseline: BLEU of the greedy reply (self-critical) or the mean of the samples")
    temperature: float = field(1.0, traced=True, low=0.0, low_open=True, help="sampling temperature (scst)")
    beam_size: int = field(1, low=1, help="act (evaluation, chat): 1 greedy decoding, >1 beam search")

    def check(self):
        per_update = self.num_envs * (self.num_samples if self.objective == "scst" else 1)
        if self.total_steps < per_update:
            raise ConfigError("total_steps", f"is less than one update ({per_update} replies: num_envs"
                                             f"{' * num_samples' if self.objective == 'scst' else ''}); raise it")
        if self.objective == "scst" and self.baseline == "group" and self.num_samples < 2:
            raise ConfigError("num_samples", "the group baseline needs num_samples >= 2 (with one sample every "
                                             "advantage is 0); raise num_samples or use --baseline greedy")


class State(NamedTuple):
    params: Any
    opt_state: Any
    key: jax.Array
    update: jax.Array


# ------------------------------------------------------------------------------------------ losses
def cross_entropy_loss(logits, targets):
    """Mean negative log-likelihood of the reference tokens (words and ``</s>``; padding and ``<unk>``
    excluded: the decoder never emits ``<unk>``).

    logits ``[B, T, V]``, targets ``[B, T]`` int -> (loss scalar, token accuracy scalar).
    """
    mask = s2s.reply_mask(targets)
    logp = jax.nn.log_softmax(logits, -1)
    nll = -jnp.take_along_axis(logp, targets[..., None], -1)[..., 0]
    n = jnp.maximum(mask.sum(), 1.0)
    acc = ((jnp.argmax(logits, -1) == targets) * mask).sum() / n
    return (nll * mask).sum() / n, acc


def scst_advantages(rewards, greedy_rewards=None):
    """Advantages of sampled replies: rewards ``[K, B]`` (K samples of each of B inputs) minus the
    baseline, the greedy reply's reward ``[B]`` (self-critical) or, when None, the mean of the input's
    K samples (group baseline) -> ``[K, B]``."""
    base = rewards.mean(0) if greedy_rewards is None else greedy_rewards
    return rewards - base[None, :]


def scst_loss(seq_log_prob, advantages):
    """REINFORCE on whole replies: ``-mean_{k,b} A_kb * log pi(y_kb | x_b)``; seq_log_prob ``[K, B]`` (summed
    over each reply's tokens), advantages ``[K, B]`` (no gradient flows through them) -> scalar."""
    return -(jax.lax.stop_gradient(advantages) * seq_log_prob).mean()


# ------------------------------------------------------------------------------------------ agent
def words(replies):
    """Words of each reply (``</s>`` and padding not counted): ``[B, T]`` -> ``[B]`` float32."""
    return (s2s.reply_mask(replies) * (replies != s2s.EOS)).sum(-1)


def model_of(config: Config, env: Env) -> s2s.Seq2Seq:
    space = env.spec.action_space
    if not isinstance(space, Tokens):
        raise ConfigError("env", f"seq2seq/scst need a dialogue env (replies of token ids, e.g. dialogue:chatterbot); "
                                 f"{env.spec.env_id} has actions {space}")
    return s2s.Seq2Seq(space.vocab_size, config.embed_dim, config.hidden, config.cell, config.attention)


def make_agent(config: Config, env: Env) -> Agent:
    config.validate()
    model = model_of(config, env)
    spec, length = env.spec, env.spec.action_space.length
    b, k = config.num_envs, config.num_samples
    tx = lambda hp: optimizer(hp["lr"], eps=hp["adam_eps"], max_grad_norm=hp["max_grad_norm"])  # noqa: E731

    def init(key, hp):
        k_net, k_state = jax.random.split(key)
        params = model.init(k_net, jnp.zeros((1,) + spec.obs_shape, jnp.int32))
        return State(params, tx(hp).init(params), k_state, jnp.zeros((), jnp.int32))

    def update_ce(state: State, hp):
        key, k_reset, k_tf, k_step = jax.random.split(state.key, 4)
        env_state, ts = env.reset(k_reset)
        x, ref = ts.obs, ts.info["reference"]
        teacher = jax.random.uniform(k_tf, (b,)) < hp["teacher_forcing"]

        def loss_fn(params):
            return cross_entropy_loss(s2s.forced_logits(model, params, x, ref, teacher), ref)

        params, opt_state, loss, acc, gnorm = gradient_step(loss_fn, tx(hp), state.params, state.opt_state)
        reply = s2s.greedy(model, state.params, x, length)
        reward = env.step(env_state, reply, k_step)[1].reward
        metrics = {"loss": loss, "token_accuracy": acc, "grad_norm": gnorm,
                   "reply_length": words(reply).mean(),
                   **episode_sums(reward, jnp.ones_like(reward, jnp.int32))}
        return State(params, opt_state, key, state.update + 1), metrics

    def update_scst(state: State, hp):
        key, k_reset, k_sample, k_step = jax.random.split(state.key, 4)
        env_state, ts = env.reset(k_reset)
        x = ts.obs
        xk = jnp.tile(x, (k, 1))  # [K*B, L]: sample j of input i is row j * B + i
        samples = s2s.sample(model, state.params, xk, k_sample, length, hp["temperature"])
        score = lambda reply: env.step(env_state, reply, k_step)[1].reward  # noqa: E731
        rewards = jax.vmap(score)(samples.reshape(k, b, length))  # [K, B]
        greedy_r = score(s2s.greedy(model, state.params, x, length)) if config.baseline == "greedy" else None
        adv = scst_advantages(rewards, greedy_r)

        def loss_fn(params):
            logits = s2s.forced_logits(model, params, xk, samples)
            logp = s2s.sequence_log_prob(logits, samples, hp["temperature"]).reshape(k, b)
            return scst_loss(logp, adv), logp.mean()

        params, opt_state, loss, logp, gnorm = gradient_step(loss_fn, tx(hp), state.params, state.opt_state)
        metrics = {"loss": loss, "grad_norm": gnorm, "sample_log_prob": logp, "advantage_abs": jnp.abs(adv).mean(),
                   "reply_length": words(samples).mean(),
                   **episode_sums(rewards, jnp.ones_like(rewards, jnp.int32))}
        if greedy_r is not None:
            metrics["greedy_bleu"] = greedy_r.mean()
        return State(params, opt_state, key, state.update + 1), metrics

    def act(state: State, obs, key=None):
        """The greedy reply (beam search with ``beam_size > 1``): obs ``[n, L]`` -> ``[n, T]`` token ids."""
        if config.beam_size > 1:
            return s2s.beam_search(model, state.params, obs, length, config.beam_size)
        return s2s.greedy(model, state.params, obs, length)

    steps = b * (k if config.objective == "scst" else 1)
    update = update_scst if config.objective == "scst" else update_ce
    return Agent(config, init, update, act, config.total_steps // steps, steps)
