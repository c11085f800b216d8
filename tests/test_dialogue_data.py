"""The dialogue data: tokenizer, vocabulary, split by conversation, the chatterbot and Cornell loaders
(a hand-made sample in the Cornell layout), bad data named by file and line, and the ``dialogue:`` env."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from _small_runs import assert_one_line_error
from jaxrl import cli, envs
from jaxrl.config import ConfigError
from jaxrl.envs.dialogue import corpora, data, dataset, options_of
from jaxrl.envs.dialogue.bleu import batch_bleu

LINES = """L1 +++$+++ u0 +++$+++ m0 +++$+++ BIANCA +++$+++ Can we make this quick?
L2 +++$+++ u2 +++$+++ m0 +++$+++ CAMERON +++$+++ Well, I thought we'd start with pronunciation.
L3 +++$+++ u0 +++$+++ m0 +++$+++ BIANCA +++$+++ Not the hacking and gagging again.
L4 +++$+++ u3 +++$+++ m1 +++$+++ JOE +++$+++ Where are you going?
L5 +++$+++ u4 +++$+++ m1 +++$+++ ANN +++$+++ Home.
L6 +++$+++ u3 +++$+++ m1 +++$+++ JOE +++$+++ Why?
L7 +++$+++ u5 +++$+++ m2 +++$+++ MAX +++$+++ Hello there.
L8 +++$+++ u6 +++$+++ m2 +++$+++ EVA +++$+++ Hi.
"""
CONVS = """u0 +++$+++ u2 +++$+++ m0 +++$+++ ['L1', 'L2', 'L3']
u3 +++$+++ u4 +++$+++ m1 +++$+++ ['L4', 'L5', 'L6']
u5 +++$+++ u6 +++$+++ m2 +++$+++ ['L7', 'L8']
"""
TITLES = """m0 +++$+++ 10 things i hate about you +++$+++ 1999 +++$+++ 6.90 +++$+++ 62847 +++$+++ ['comedy', 'romance']
m1 +++$+++ a film +++$+++ 2001 +++$+++ 5.0 +++$+++ 100 +++$+++ ['drama']
m2 +++$+++ another film +++$+++ 2002 +++$+++ 7.0 +++$+++ 100 +++$+++ ['comedy']
"""


@pytest.fixture
def cornell_dir(tmp_path):
    d = tmp_path / "cornell"
    d.mkdir()
    (d / "movie_lines.txt").write_text(LINES, encoding="iso-8859-1")
    (d / "movie_conversations.txt").write_text(CONVS, encoding="iso-8859-1")
    (d / "movie_titles_metadata.txt").write_text(TITLES, encoding="iso-8859-1")
    return d


def test_tokenizer_and_untokenize():
    assert data.tokenize("Hi, How's it going?") == ["hi", ",", "how's", "it", "going", "?"]
    assert data.tokenize("It\u2019s 10 o'clock...") == ["it's", "10", "o'clock", ".", ".", "."]
    assert data.untokenize(["hi", ",", "how's", "it", "going", "?"]) == "hi, how's it going?"


def test_vocab_from_counts_with_unk_and_specials():
    v = data.Vocab.build([["a", "b", "a"], ["c", "a", "b"]], min_count=2)
    assert v.words == data.SPECIAL + ("a", "b")  # c (once) is <unk>; by count, then alphabetically
    ids = v.encode(["a", "c", "b"], 5, eos=True)
    assert ids.tolist() == [4, data.UNK, 5, data.EOS, data.PAD]
    assert v.decode(ids) == ["a", "<unk>", "b"]


def test_cornell_sample_pairs_and_genre(cornell_dir):
    convs = corpora.cornell(str(cornell_dir))
    assert convs[0] == ["Can we make this quick?", "Well, I thought we'd start with pronunciation.",
                        "Not the hacking and gagging again."]
    assert [len(c) for c in convs] == [3, 3, 2]
    assert len(corpora.cornell(str(cornell_dir), genre="comedy")) == 2  # m0 and m2
    ds = data.build(convs, "x", max_len=20, min_count=1, test_fraction=0.34, split_seed=0)
    assert len(ds.train.text) + len(ds.test.text) == 5  # 2 + 2 + 1 consecutive pairs
    assert (["where", "are", "you", "going", "?"], ["home", "."]) in ds.train.text + ds.test.text


def test_split_is_by_conversation_and_deduplicated():
    convs = [[f"q{i} a", f"r{i} b", f"s{i} c"] for i in range(40)] + [["q0 a", "r0 b", "s0 c"]] * 5
    ds = data.build(convs, "x", max_len=5, min_count=1, test_fraction=0.25, split_seed=3)
    conv_of = lambda pair: pair[0][0][1:] if pair[0][0][0] == "q" else pair[0][0][1:]  # noqa: E731
    train, test = {conv_of(p) for p in ds.train.text}, {conv_of(p) for p in ds.test.text}
    assert not train & test and len(train | test) == 40  # the 5 copies of conversation 0 are kept once
    assert len(ds.test.text) == 2 * 10
    assert ds.train.inputs.shape == (60, 5) and ds.train.replies.shape == (60, 6)
    assert set(ds.vocab.words) >= {"q1", "a"} and all(w not in ds.vocab.words for p in ds.test.text for w in p[0][:1]
                                                      if w not in {x for q in ds.train.text for s in q for x in s})


def test_chatterbot_corpus_loads():
    ds = dataset("chatterbot", {})
    assert len(ds.train.text) > 600 and len(ds.test.text) > 50 and ds.vocab.size > 500
    train = {(tuple(a), tuple(b)) for a, b in ds.train.text}
    assert not any((tuple(a), tuple(b)) in train for a, b in ds.test.text)  # no copied pair across the split


@pytest.mark.parametrize("case", ["empty", "fields", "ids", "missing_line", "no_lines_file"])
def test_bad_cornell_data_names_file_and_line(cornell_dir, case):
    if case == "empty":
        (cornell_dir / "movie_lines.txt").write_text("\n")
        where, what = "movie_lines.txt:1", "the file is empty"
    elif case == "fields":
        (cornell_dir / "movie_lines.txt").write_text(LINES + "L9 +++$+++ u0 +++$+++ only three\n")
        where, what = "movie_lines.txt:9", "expected 5 fields"
    elif case == "ids":
        (cornell_dir / "movie_conversations.txt").write_text(CONVS + "u0 +++$+++ u2 +++$+++ m0 +++$+++ L1, L2\n")
        where, what = "movie_conversations.txt:4", "expected a list like"
    elif case == "missing_line":
        (cornell_dir / "movie_conversations.txt").write_text("u0 +++$+++ u2 +++$+++ m0 +++$+++ ['L1', 'L99']\n")
        where, what = "movie_conversations.txt:1", "line L99 is not in movie_lines.txt"
    else:
        (cornell_dir / "movie_lines.txt").unlink()
        where, what = "movie_lines.txt", "not found"
    with pytest.raises(data.DataError) as e:
        corpora.cornell(str(cornell_dir))
    msg = str(e.value)
    assert msg.startswith("data: ") and where in msg and what in msg and "\n" not in msg


@pytest.mark.parametrize("text, where, what", [
    ("", ":1", "the file is empty"),
    ("conversations:\n- - a\n  - b\n- [unclosed\n", ":5", "not valid YAML"),
    ("categories: [x]\n", ":1", "'conversations' list"),
    ("conversations:\n- - a\n  - b\n- - a\n  - {k: v}\n", ":4", "conversation 2 is not a list of utterances"),
])
def test_bad_chatterbot_yaml_names_file_and_line(tmp_path, text, where, what):
    path = tmp_path / "x.yml"
    path.write_text(text)
    with pytest.raises(data.DataError) as e:
        corpora.chatterbot_file(path)
    assert f"x.yml{where}" in str(e.value) and what in str(e.value)


def test_no_pairs_after_filtering_is_an_error(cornell_dir, tmp_path, capsys):
    with pytest.raises(data.DataError, match="no training pairs left after filtering"):
        data.build(corpora.cornell(str(cornell_dir)), str(cornell_dir), max_len=1)
    out = tmp_path / "out"
    rc = cli.main(["train", "seq2seq", "--env", "dialogue:cornell", "--env-option", f"data_dir={cornell_dir}",
                   "--env-option", "max_len=1", "--out", str(out), "--quiet"])
    assert_one_line_error(rc, capsys.readouterr().err, "no training pairs left after filtering")
    assert not out.exists()


@pytest.mark.parametrize("args, expect", [
    (["seq2seq", "--env", "dialogue:chatterbot", "--env-option", "max_lenn=3"], "unknown option 'max_lenn'"),
    (["seq2seq", "--env", "dialogue:cornell"], "needs --env-option data_dir=PATH"),
    (["seq2seq", "--env", "dialogue:chatterbot", "--env-option", "categories=nope"], "no category 'nope'"),
    (["seq2seq", "--env", "gymnax:CartPole-v1"], "need a dialogue env"),
    (["ppo", "--env", "dialogue:reverse"], "token sequence"),
    (["dqn", "--env", "dialogue:reverse"], "token-sequence actions"),
    (["scst", "--baseline", "group", "--num-samples", "1"], "num_samples: the group baseline needs"),
])
def test_bad_dialogue_input_is_one_line(tmp_path, capsys, args, expect):
    out = tmp_path / "out"
    rc = cli.main(["train", *args, "--out", str(out), "--quiet"])
    assert_one_line_error(rc, capsys.readouterr().err, expect)
    assert not out.exists()


def test_env_episode_is_one_reply_scored_by_bleu():
    env = envs.make("dialogue:reverse", num_envs=6)
    ds = dataset("reverse", {})
    assert env.spec.obs_shape == (20,) and env.spec.action_space.length == 21
    assert env.spec.action_space.vocab_size == ds.vocab.size and env.spec.max_episode_steps == 1
    state, ts = jax.jit(env.reset)(jax.random.PRNGKey(0))
    ref = ts.info["reference"]
    rows = np.asarray(state)
    np.testing.assert_array_equal(ts.obs, ds.train.inputs[rows])
    np.testing.assert_array_equal(ref, ds.train.replies[rows])
    wrong = jnp.full_like(ref, 4).at[:, 3].set(data.EOS)
    action = jnp.where(jnp.arange(6)[:, None] % 2 == 0, ref, wrong)  # even envs answer exactly
    _, ts2 = jax.jit(env.step)(state, action, jax.random.PRNGKey(1))
    np.testing.assert_allclose(ts2.reward, batch_bleu(action, ref, data.EOS))
    assert np.all(np.asarray(ts2.reward)[::2] == pytest.approx(1.0)) and np.all(ts2.terminated)
    assert np.all(ts2.episode_done) and np.all(ts2.episode_length == 1)
    np.testing.assert_array_equal(ts2.final_obs, ts.obs)  # the input just answered; obs is the next one


def test_eval_env_spreads_over_the_test_split():
    o = options_of("reverse", {})
    assert o["split"] == "train" and o["order"] == 4
    backend, name = envs.resolve("dialogue:reverse")
    env = envs.make("dialogue:reverse", num_envs=50, **backend.eval_options(name))
    state, ts = env.reset(jax.random.PRNGKey(0))
    n = len(dataset("reverse", {}).test.inputs)
    assert np.asarray(state).tolist() == [i * n // 50 for i in range(50)]
    with pytest.raises(ConfigError, match="split must be one of"):
        envs.make("dialogue:reverse", split="dev")
