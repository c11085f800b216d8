"""Conversation loaders: the chatterbot corpus (bundled, YAML) and the Cornell Movie-Dialogs layout.

Each returns a list of conversations, a conversation being a list of utterances (strings) in order.
Unusable data is a one-line :class:`~jaxrl.envs.dialogue.data.DataError` naming the file and line.

* **chatterbot** (the ``chatterbot-corpus`` package, 1.3.3, BSD-3-Clause): ``data/<language>/*.yml``,
  each ``{categories: [...], conversations: [[utterance, utterance, ...], ...]}``. Scalars are read
  as strings (``yes`` stays ``yes``, not ``True``); a conversation that is a single string counts as
  one utterance (no pairs).
* **cornell** (the layout of the Cornell Movie-Dialogs Corpus, as Lapan's chapter 12 uses it), in a
  folder: ``movie_lines.txt`` (``L1045 +++$+++ u0 +++$+++ m0 +++$+++ BIANCA +++$+++ They do not!``),
  ``movie_conversations.txt`` (``u0 +++$+++ u2 +++$+++ m0 +++$+++ ['L194', 'L195', 'L196']``) and, to
  keep only some genres, ``movie_titles_metadata.txt`` (``m0 +++$+++ title +++$+++ 1999 +++$+++ 6.90
  +++$+++ 62847 +++$+++ ['comedy', 'romance']``). The files are ISO-8859-1.
"""
from __future__ import annotations

import ast
from pathlib import Path
from typing import Optional

from jaxrl.envs.dialogue.data import DataError

SEP = " +++$+++ "


def chatterbot_dir(language: str = "english") -> Path:
    try:
        import chatterbot_corpus
    except ImportError:
        raise DataError("chatterbot", "needs the chatterbot-corpus package: pip install chatterbot-corpus==1.3.3")
    folder = Path(chatterbot_corpus.__file__).parent / "data" / language
    if not folder.is_dir():
        langs = sorted(p.name for p in folder.parent.iterdir() if p.is_dir())
        raise DataError(str(folder), f"no such language; choose from {', '.join(langs)}")
    return folder


def chatterbot_file(path: Path) -> list:
    """The conversations of one chatterbot YAML file."""
    import yaml

    text = path.read_text(encoding="utf-8")
    if not text.strip():
        raise DataError(f"{path}:1", "the file is empty")
    try:
        doc = yaml.load(text, Loader=yaml.BaseLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        raise DataError(f"{path}:{line}", f"not valid YAML ({getattr(e, 'problem', None) or type(e).__name__})")
    convs = doc.get("conversations") if isinstance(doc, dict) else None
    if not isinstance(convs, list):
        raise DataError(f"{path}:1", "expected a mapping with a 'conversations' list")
    lines = text.splitlines()
    out = []
    for i, c in enumerate(convs):
        if isinstance(c, str):  # one utterance (english/trivia.yml of 1.3.3 has one): no pairs
            c = [c]
        if not isinstance(c, list) or not all(isinstance(u, str) for u in c):
            raise DataError(f"{path}:{_line_of(lines, i)}", f"conversation {i + 1} is not a list of utterances")
        out.append(c)
    return out


def _line_of(lines: list, index: int) -> int:
    """The line of the ``index``-th top-level ``- -`` item of the conversations list (best effort)."""
    starts = [n + 1 for n, s in enumerate(lines) if s.startswith("- ")]
    return starts[index] if index < len(starts) else 1


def chatterbot(language: str = "english", categories: Optional[str] = None) -> list:
    """Conversations of the chatterbot corpus; ``categories``: comma-separated file stems (``greetings,ai``)."""
    folder = chatterbot_dir(language)
    files = sorted(folder.glob("*.yml"))
    if categories:
        wanted = [c.strip() for c in categories.split(",") if c.strip()]
        stems = {p.stem for p in files}
        unknown = [c for c in wanted if c not in stems]
        if unknown:
            raise DataError(str(folder), f"no category {unknown[0]!r}; choose from {', '.join(sorted(stems))}")
        files = [p for p in files if p.stem in wanted]
    return [c for p in files for c in chatterbot_file(p)]


def _fields(path: Path, n: int):
    """``(line number, fields)`` of a ``+++$+++`` file, each line with exactly ``n`` fields."""
    if not path.is_file():
        raise DataError(str(path), "not found (a Cornell Movie-Dialogs folder holds movie_lines.txt and "
                                   "movie_conversations.txt)")
    with open(path, encoding="iso-8859-1") as f:
        text = f.read()
    if not text.strip():
        raise DataError(f"{path}:1", "the file is empty")
    for num, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split(SEP)
        if len(parts) != n:
            raise DataError(f"{path}:{num}", f"expected {n} fields separated by '{SEP.strip()}', found {len(parts)}")
        yield num, [p.strip() for p in parts[:-1]] + [parts[-1].rstrip("\n")]


def _id_list(path: Path, num: int, text: str) -> list:
    try:
        ids = ast.literal_eval(text.strip())
    except (ValueError, SyntaxError):
        ids = None
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise DataError(f"{path}:{num}", f"expected a list like ['L194', 'L195'], got {text.strip()[:40]!r}")
    return ids


def cornell(data_dir: str, genre: Optional[str] = None) -> list:
    """Conversations of a Cornell Movie-Dialogs folder, optionally of movies of one ``genre``."""
    folder = Path(data_dir)
    lines = {}
    for num, (line_id, _, _, _, text) in _fields(folder / "movie_lines.txt", 5):
        lines[line_id] = text
    movies = None
    if genre:
        meta = folder / "movie_titles_metadata.txt"
        movies = {m for num, (m, _, _, _, _, genres) in _fields(meta, 6) if genre in _id_list(meta, num, genres)}
        if not movies:
            raise DataError(str(meta), f"no movie of genre {genre!r}")
    convs_path = folder / "movie_conversations.txt"
    convs = []
    for num, (_, _, movie, ids) in _fields(convs_path, 4):
        ids = _id_list(convs_path, num, ids)
        missing = [i for i in ids if i not in lines]
        if missing:
            raise DataError(f"{convs_path}:{num}", f"line {missing[0]} is not in movie_lines.txt")
        if movies is None or movie in movies:
            convs.append([lines[i] for i in ids])
    return convs
