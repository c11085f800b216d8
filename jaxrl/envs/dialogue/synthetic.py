"""Synthetic dialogue tasks with known answers, for tests and for checking the algorithms.

* ``reverse``: the input is ``min_words``..``max_words`` random words out of ``num_words``
  (``t0``, ``t1``, ...); the reply is the input reversed. One pair per conversation, so the test split
  holds inputs not seen in training (up to chance repeats).
* ``ambiguous``: a task on which cross-entropy and BLEU disagree. Input ``q<i>`` (one of ``num_inputs``)
  is answered, with probability ``p_long``, by the fixed ``b<i> c<i> d<i> e<i>``, and otherwise by
  ``a<i> x<i>v<j>`` with ``j`` uniform among ``variants``. The most likely first word is ``a<i>`` and no
  second word is likely, so the greedy decode of a maximum-likelihood model is some ``a<i> x<i>v<j>``:
  expected BLEU-4 against a drawn reference ``(1 - p_long) * (1/variants + (1 - 1/variants) * 0.1495)``
  (0.175 with the defaults), while always replying the long answer earns ``p_long`` (0.4). The test
  split holds fresh draws of the same distribution.
"""
from __future__ import annotations

import random


def reverse(num_pairs: int = 2000, num_words: int = 10, min_words: int = 4, max_words: int = 6,
            seed: int = 0) -> list:
    rng = random.Random(seed)
    convs = []
    for _ in range(num_pairs):
        words = [f"t{rng.randrange(num_words)}" for _ in range(rng.randint(min_words, max_words))]
        convs.append([" ".join(words), " ".join(reversed(words))])
    return convs


def ambiguous(num_pairs: int = 2000, num_inputs: int = 4, variants: int = 6, p_long: float = 0.4,
              seed: int = 0) -> list:
    rng = random.Random(seed)
    convs = []
    for _ in range(num_pairs):
        i = rng.randrange(num_inputs)
        if rng.random() < p_long:
            reply = f"b{i} c{i} d{i} e{i}"
        else:
            reply = f"a{i} x{i}v{rng.randrange(variants)}"
        convs.append([f"q{i}", reply])
    return convs
