"""The ``dialogue:`` env backend: one episode is one reply, its reward the reply's BLEU.

Ids: ``dialogue:chatterbot`` (the bundled chatterbot corpus, English), ``dialogue:cornell`` (a Cornell
Movie-Dialogs folder, ``--env-option data_dir=PATH``), and two synthetic tasks with known answers,
``dialogue:reverse`` and ``dialogue:ambiguous`` (:mod:`~jaxrl.envs.dialogue.synthetic`).

* observation: the input sentence, ``[max_len]`` int32 token ids padded with 0
  (:mod:`~jaxrl.envs.dialogue.data`);
* action: a reply, ``[max_len + 1]`` token ids (:class:`jaxrl.envs.core.Tokens`); it ends at its
  first ``</s>`` (or padding), later tokens are ignored;
* reward: sentence BLEU of the reply against the pair's reference reply, up to ``order``-grams
  with nltk's method-1 smoothing (:mod:`~jaxrl.envs.dialogue.bleu`), computed on device; every episode
  ends after this one step (``terminated``), and the next input is drawn;
* ``ts.info["reference"]``: the reference reply of the current input, ``[max_len + 1]`` (for
  supervised pre-training; the reward is computed from it).

Inputs are drawn uniformly from the ``split`` (``train``); the evaluation env takes the ``test`` split
spread evenly (``sample=spread``: env copy ``i`` of ``n`` answers pair ``i * N // n``), so
``eval_return`` is the greedy BLEU on test inputs. At the end of ``jaxrl train`` and in ``jaxrl eval``
the backend report (:mod:`~jaxrl.envs.dialogue.report`) adds BLEU on every train and test pair and a
few example replies.

Options (``--env-option KEY=VALUE``): ``max_len`` (20), ``min_count`` (2), ``test_fraction`` (0.1),
``split_seed`` (0), ``order`` (4: BLEU-4; Lapan's chapter uses 2), ``dedup`` (true: identical
conversations kept once; false for ``ambiguous``, whose repeats are its distribution), plus per id: ``language``
(english), ``categories`` (chatterbot file stems, comma-separated); ``data_dir``, ``genre``
(cornell); ``num_pairs``, ``num_words``, ``min_words``, ``max_words``, ``seed`` (reverse);
``num_pairs``, ``num_inputs``, ``variants``, ``p_long``, ``seed`` (ambiguous).
"""
from __future__ import annotations

import difflib
import functools

import jax
import jax.numpy as jnp

from jaxrl.config import ConfigError, coerce
from jaxrl.envs.core import Env, EnvSpec, TimeStep, Tokens
from jaxrl.envs.dialogue import corpora, data, synthetic
from jaxrl.envs.dialogue.bleu import batch_bleu
from jaxrl.envs.dialogue.report import REPORT
from jaxrl.envs.registry import Backend

COMMON = {"max_len": 20, "min_count": 2, "test_fraction": 0.1, "split_seed": 0, "order": 4, "dedup": True,
          "split": "train", "sample": "uniform"}
PER_ID = {
    "chatterbot": {"language": "english", "categories": ""},
    "cornell": {"data_dir": "", "genre": ""},
    "reverse": {"num_pairs": 2000, "num_words": 10, "min_words": 4, "max_words": 6, "seed": 0},
    "ambiguous": {"num_pairs": 2000, "num_inputs": 4, "variants": 6, "p_long": 0.4, "seed": 0, "dedup": False},
}
CHOICES = {"split": ("train", "test"), "sample": ("uniform", "spread")}
LOW = {"max_len": 1, "min_count": 1, "order": 1, "num_pairs": 1, "num_words": 1, "min_words": 1, "max_words": 1,
       "num_inputs": 1, "variants": 1}


def options_of(name: str, options: dict) -> dict:
    """Every option of ``dialogue:name`` with its value (defaults filled in); one-line errors."""
    known = dict(COMMON, **PER_ID[name])
    out = dict(known)
    for k, v in options.items():
        if k not in known:
            close = difflib.get_close_matches(k, list(known), n=2)
            hint = f"did you mean {' or '.join(close)}?" if close else f"options: {', '.join(known)}"
            raise ConfigError("env_option", f"unknown option {k!r} for dialogue:{name}; {hint}")
        out[k] = coerce(type(known[k]), v, f"env_option {k}")
    for k, low in LOW.items():
        if k in out and out[k] < low:
            raise ConfigError("env_option", f"{k} must be >= {low}; got {out[k]}")
    for k, choices in CHOICES.items():
        if out[k] not in choices:
            raise ConfigError("env_option", f"{k} must be one of {', '.join(choices)}; got {out[k]!r}")
    if not 0.0 < out["test_fraction"] < 1.0:
        raise ConfigError("env_option", f"test_fraction must be in (0, 1); got {out['test_fraction']}")
    if name == "cornell" and not out["data_dir"]:
        raise ConfigError("env_option", "dialogue:cornell needs --env-option data_dir=PATH (a folder with "
                                        "movie_lines.txt and movie_conversations.txt)")
    return out


def conversations(name: str, o: dict) -> list:
    if name == "chatterbot":
        return corpora.chatterbot(o["language"], o["categories"] or None)
    if name == "cornell":
        return corpora.cornell(o["data_dir"], o["genre"] or None)
    if name == "reverse":
        return synthetic.reverse(o["num_pairs"], o["num_words"], o["min_words"], o["max_words"], o["seed"])
    return synthetic.ambiguous(o["num_pairs"], o["num_inputs"], o["variants"], o["p_long"], o["seed"])


@functools.lru_cache(maxsize=8)
def _dataset(name: str, items: tuple) -> data.Dataset:
    o = dict(items)
    source = o["data_dir"] if name == "cornell" else f"dialogue:{name}"
    ds = data.build(conversations(name, o), source, o["max_len"], o["min_count"], o["test_fraction"],
                    o["split_seed"], dedup=o["dedup"])
    if len(ds.test.inputs) == 0:
        raise data.DataError(source, f"no test pairs left after filtering; raise test_fraction "
                                     f"({o['test_fraction']}) or max_len ({o['max_len']})")
    return ds


def dataset(name: str, options: dict) -> data.Dataset:
    """The :class:`~jaxrl.envs.dialogue.data.Dataset` of ``dialogue:name`` with these options (cached)."""
    o = options_of(name, options)
    keep = [k for k in o if k not in ("split", "sample", "order")]  # these do not change the data
    return _dataset(name, tuple((k, o[k]) for k in keep))


def make_split_env(ds: data.Dataset, env_id: str, split: str, sample: str, num_envs: int, order: int) -> Env:
    s = ds.split(split)
    inputs, replies, n = jnp.asarray(s.inputs), jnp.asarray(s.replies), len(s.inputs)
    spec = EnvSpec(env_id, num_envs, (ds.max_len,), jnp.int32, Tokens(ds.vocab.size, ds.max_len + 1), 1, "dialogue")

    def pick(key):
        if sample == "spread":
            return ((jnp.arange(num_envs) * n) // num_envs).astype(jnp.int32)
        return jax.random.randint(key, (num_envs,), 0, n)

    def timestep(idx, reward, done, final_obs, length):
        return TimeStep(inputs[idx], reward, done, jnp.zeros_like(done), final_obs, done, reward, length,
                        {"reference": replies[idx]})

    def reset(key):
        idx = pick(key)
        z = jnp.zeros((num_envs,), jnp.float32)
        return idx, timestep(idx, z, jnp.zeros((num_envs,), bool), inputs[idx], jnp.zeros((num_envs,), jnp.int32))

    def step(idx, action, key):
        reward = batch_bleu(action, replies[idx], data.EOS, order)
        new = pick(key)
        done = jnp.ones((num_envs,), bool)
        return new, timestep(new, reward, done, inputs[idx], jnp.ones((num_envs,), jnp.int32))

    return Env(spec, reset, step)


def make(name: str, num_envs: int, num_seeds: int = 1, **options) -> Env:
    o = options_of(name, options)
    return make_split_env(dataset(name, options), f"dialogue:{name}", o["split"], o["sample"], num_envs, o["order"])


BACKEND = Backend(name="dialogue", make=make, ids=lambda: list(PER_ID),
                  eval_options=lambda name: {"split": "test", "sample": "spread"}, report=REPORT)
