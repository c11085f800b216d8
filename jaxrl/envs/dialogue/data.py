"""Dialogue pairs as token-id arrays: tokenizer, vocabulary, length limits, split by conversation.

A corpus is a list of conversations (lists of utterances, :mod:`jaxrl.envs.dialogue.corpora`);
consecutive utterances make (input, reply) pairs. :func:`build` turns it into a :class:`Dataset`:

* tokenizer: lower-case; words (letters and digits, with inner apostrophes: ``don't``) and every
  other non-space character (punctuation) as its own token;
* split by conversation: identical conversations (after tokenizing) are kept once with ``dedup`` (the
  chatterbot corpus 1.3.3 repeats some conversations up to 121 times), then a seeded shuffle, and the last
  ``test_fraction`` of them are the test split: a conversation's pairs are never on both sides;
* length limits: pairs whose input or reply has more than ``max_len`` words are dropped;
* vocabulary from the training split alone: words seen at least ``min_count`` times (inputs and
  replies), ordered by count then alphabetically; every other word is ``<unk>``.

Token ids: 0 ``<pad>``, 1 ``<s>`` (the decoder's first input), 2 ``</s>`` (end of a reply),
3 ``<unk>``, then the words. An input is ``[max_len]`` ids padded with 0; a reply is
``[max_len + 1]``: its words, ``</s>``, then padding.
"""
from __future__ import annotations

import dataclasses
import random
import re
from collections import Counter
from typing import NamedTuple, Optional, Sequence

import numpy as np

from jaxrl.config import ConfigError

PAD, BOS, EOS, UNK = 0, 1, 2, 3
SPECIAL = ("<pad>", "<s>", "</s>", "<unk>")
_TOKEN = re.compile(r"[^\W_]+(?:'[^\W_]+)*|[^\w\s]|_", re.UNICODE)


class DataError(ConfigError):
    """Unusable data: the message names the file and line (``data: FILE:LINE: what is wrong``)."""

    def __init__(self, where: str, message: str):
        super().__init__("data", f"{where}: {message}")


def tokenize(text: str) -> list[str]:
    """``"Hi, how's it going?"`` -> ``['hi', ',', "how's", 'it', 'going', '?']`` (curly apostrophes count as ')."""
    return _TOKEN.findall(text.lower().replace("\u2019", "'").replace("\u2018", "'"))


def untokenize(words: Sequence[str]) -> str:
    """Words back to a line: no space before punctuation or a leading apostrophe."""
    out = ""
    for w in words:
        glue = not out or (len(w) == 1 and not w.isalnum()) or w.startswith("'")
        out += w if glue else " " + w
    return out


@dataclasses.dataclass(frozen=True)
class Vocab:
    words: tuple  # index -> word, the specials first

    @classmethod
    def build(cls, sentences, min_count: int) -> "Vocab":
        counts = Counter(w for s in sentences for w in s)
        kept = sorted((w for w, c in counts.items() if c >= min_count and w not in SPECIAL),
                      key=lambda w: (-counts[w], w))
        return cls(SPECIAL + tuple(kept))

    @property
    def size(self) -> int:
        return len(self.words)

    def index(self) -> dict:
        return {w: i for i, w in enumerate(self.words)}

    def encode(self, words, length: int, eos: bool = False) -> np.ndarray:
        idx = self.index()
        ids = [idx.get(w, UNK) for w in words] + ([EOS] if eos else [])
        out = np.zeros(length, np.int32)
        out[:len(ids)] = ids[:length]
        return out

    def decode(self, ids) -> list[str]:
        """Words up to the first ``</s>`` or padding."""
        out = []
        for i in np.asarray(ids).tolist():
            if i in (PAD, EOS):
                break
            out.append(self.words[i] if 0 <= i < len(self.words) else SPECIAL[UNK])
        return out


class Split(NamedTuple):
    inputs: np.ndarray  # [N, max_len] int32
    replies: np.ndarray  # [N, max_len + 1] int32: words, </s>, padding
    text: list  # [(input words, reply words)], for examples


class Dataset(NamedTuple):
    vocab: Vocab
    train: Split
    test: Split
    max_len: int
    source: str  # where it came from, for messages

    def split(self, name: str) -> Split:
        return self.train if name == "train" else self.test


def pairs_of(conversation) -> list[tuple[list[str], list[str]]]:
    toks = [tokenize(u) for u in conversation]
    return [(a, b) for a, b in zip(toks, toks[1:]) if a and b]


def build(conversations: list, source: str, max_len: int = 20, min_count: int = 2, test_fraction: float = 0.1,
          split_seed: int = 0, vocab: Optional[Vocab] = None, dedup: bool = True) -> Dataset:
    """A :class:`Dataset` from conversations (lists of utterances); one-line errors when nothing is left."""
    if dedup:
        seen, unique = set(), []
        for c in conversations:
            key = tuple(tuple(tokenize(u)) for u in c)
            if key not in seen:
                seen.add(key)
                unique.append(c)
        conversations = unique
    order = list(range(len(conversations)))
    random.Random(split_seed).shuffle(order)
    n_test = int(round(test_fraction * len(order)))
    if test_fraction > 0 and n_test == 0 and len(order) > 1:
        n_test = 1
    test_ids, train_ids = set(order[len(order) - n_test:]), order[:len(order) - n_test]

    def pairs(ids):
        return [p for i in sorted(ids) for p in pairs_of(conversations[i])
                if len(p[0]) <= max_len and len(p[1]) <= max_len]

    train, test = pairs(train_ids), pairs(test_ids)
    if not train:
        raise DataError(source, f"no training pairs left after filtering ({len(conversations)} conversations, "
                                f"max_len={max_len}); raise max_len or check the data")
    if vocab is None:
        vocab = Vocab.build([s for p in train for s in p], min_count)

    def arrays(ps):
        x = np.stack([vocab.encode(a, max_len) for a, _ in ps]) if ps else np.zeros((0, max_len), np.int32)
        y = (np.stack([vocab.encode(b, max_len + 1, eos=True) for _, b in ps]) if ps
             else np.zeros((0, max_len + 1), np.int32))
        return Split(x, y, ps)

    return Dataset(vocab, arrays(train), arrays(test), max_len, source)
