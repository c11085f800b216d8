"""The checkpoint file format: bit-exact round trip, atomic under a kill during save, refuses
damaged or mismatched files, falls back to the previous good checkpoint."""
import json
import subprocess
import sys
import textwrap
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl import checkpoint
from jaxrl.checkpoint import CheckpointError


class Inner(NamedTuple):
    env_state: dict
    obs: jax.Array


class State(NamedTuple):
    params: dict
    key: jax.Array
    typed_key: jax.Array
    count: jax.Array
    inner: Inner


def _state(seed):
    k = jax.random.PRNGKey(seed)
    return State(
        params={"w": jax.random.normal(k, (3, 4)), "b": jnp.arange(4, dtype=jnp.bfloat16)},
        key=k,
        typed_key=jax.random.key(seed + 1),
        count=jnp.asarray(seed, jnp.int32),
        inner=Inner({"pos": jnp.full((2,), float(seed)), "done": jnp.asarray([True, False])},
                    jnp.full((2, 5), seed, jnp.uint8)),
    )


def _assert_equal(a, b):
    fa, ta = jax.tree_util.tree_flatten(a)
    fb, tb = jax.tree_util.tree_flatten(b)
    assert ta == tb
    for x, y in zip(fa, fb):
        if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            assert jax.dtypes.issubdtype(y.dtype, jax.dtypes.prng_key)
            x, y = jax.random.key_data(x), jax.random.key_data(y)
        assert np.asarray(x).dtype == np.asarray(y).dtype
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_round_trip_is_bit_exact_with_extras_and_meta(tmp_path):
    s = _state(3)
    hist = {"hist_end": np.arange(5), "hist/loss": np.random.default_rng(0).normal(size=(5, 2)).astype(np.float32)}
    path = checkpoint.save(tmp_path, 7, s, {"wall_time": 1.5}, hist)
    assert path.name == "ckpt-000000000007.npz"
    restored, meta, extras, _ = checkpoint.load_latest(tmp_path, _state(0))
    _assert_equal(restored, s)
    assert meta["update"] == 7 and meta["wall_time"] == 1.5
    np.testing.assert_array_equal(extras["hist/loss"], hist["hist/loss"])
    # the restored state is usable by jitted code, typed keys included
    jax.jit(lambda st: jax.random.normal(st.typed_key, ()) + st.params["w"].sum())(restored)


def test_keeps_only_the_last_two(tmp_path):
    for u in (1, 2, 3):
        checkpoint.save(tmp_path, u, _state(u), {"wall_time": 0.0})
    assert [p.name for p in checkpoint.list_checkpoints(tmp_path)] == ["ckpt-000000000002.npz",
                                                                      "ckpt-000000000003.npz"]


def test_kill_during_save_leaves_the_last_good_checkpoint(tmp_path):
    """A real SIGKILL halfway through writing checkpoint 2: checkpoint 1 still loads, 2 is absent."""
    code = textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {str(__import__("pathlib").Path(__file__).parent)!r})
        import numpy as np
        from test_checkpoint import _state
        from jaxrl import checkpoint
        checkpoint.save({str(tmp_path)!r}, 1, _state(1), {{"wall_time": 0.0}})
        def dying_write(f, **arrays):
            np.savez(f, **arrays)
            f.truncate(f.tell() // 2)      # half the bytes are on disk ...
            f.flush(); os.fsync(f.fileno())
            os.kill(os.getpid(), signal.SIGKILL)   # ... when the process dies
        checkpoint.save({str(tmp_path)!r}, 2, _state(2), {{"wall_time": 0.0}}, _write=dying_write)
    """)
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == -9, p.stderr
    leftovers = list((tmp_path / "checkpoints").glob(".ckpt-*.tmp-*"))
    assert len(leftovers) == 1  # the partial file never got the final name
    assert [p.name for p in checkpoint.list_checkpoints(tmp_path)] == ["ckpt-000000000001.npz"]
    restored, meta, _, _ = checkpoint.load_latest(tmp_path, _state(0))
    assert meta["update"] == 1
    _assert_equal(restored, _state(1))
    checkpoint.save(tmp_path, 3, _state(3), {"wall_time": 0.0})  # the next save cleans the leftover
    assert not list((tmp_path / "checkpoints").glob(".ckpt-*.tmp-*"))


def test_damaged_newest_falls_back_with_a_warning(tmp_path, capsys):
    checkpoint.save(tmp_path, 1, _state(1), {"wall_time": 0.0})
    p2 = checkpoint.save(tmp_path, 2, _state(2), {"wall_time": 0.0})
    p2.write_bytes(p2.read_bytes()[:100])  # damaged after the fact (disk error)
    restored, meta, _, path = checkpoint.load_latest(tmp_path, _state(0))
    assert meta["update"] == 1 and path.name == "ckpt-000000000001.npz"
    _assert_equal(restored, _state(1))
    assert "skipping ckpt-000000000002.npz" in capsys.readouterr().err


def test_all_damaged_or_missing_is_a_one_line_error(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint"):
        checkpoint.load_latest(tmp_path, _state(0))
    p = checkpoint.save(tmp_path, 1, _state(1), {"wall_time": 0.0})
    p.write_bytes(b"not a zip file at all")
    with pytest.raises(CheckpointError, match="damaged") as e:
        checkpoint.load_latest(tmp_path, _state(0), warn=None)
    assert "\n" not in str(e.value)


def test_a_checkpoint_of_another_config_is_refused(tmp_path):
    checkpoint.save(tmp_path, 1, _state(1), {"wall_time": 0.0})
    other = _state(0)._replace(params={"w": jnp.zeros((3, 5)), "b": jnp.zeros(4, jnp.bfloat16)})
    with pytest.raises(CheckpointError, match=r"expected float32\[3, 5\]"):
        checkpoint.load_latest(tmp_path, other, warn=None)
    fewer = {"w": jnp.zeros((3, 4))}
    with pytest.raises(CheckpointError, match="different algorithm or config"):
        checkpoint.load_latest(tmp_path, fewer, warn=None)


def test_splice_env_takes_env_fields_from_the_fresh_state():
    restored, fresh = _state(1), _state(2)
    s = checkpoint.splice_env(restored, fresh)
    _assert_equal(s.inner, fresh.inner)  # env_state and obs: fresh episodes
    _assert_equal(s.params, restored.params)  # everything else: restored
    _assert_equal(s.count, restored.count)


# ---------------------------------------------------------------- restore by key path
class Nets(NamedTuple):  # DQN-like: online and target parameters of the same shapes
    params: dict
    target: dict
    step: jax.Array


class NetsSwapped(NamedTuple):  # the same fields, declared in the other order
    target: dict
    params: dict
    step: jax.Array


def _nets(seed, cls=Nets):
    k1, k2 = jax.random.split(jax.random.PRNGKey(seed))
    online = {"Dense_0": {"kernel": jax.random.normal(k1, (4, 8)), "bias": jnp.zeros(8)}}
    target = {"Dense_0": {"kernel": jax.random.normal(k2, (4, 8)), "bias": jnp.ones(8)}}
    return cls(params=online, target=target, step=jnp.asarray(seed, jnp.int32))


def _nested(seed):
    return {"agent": _nets(seed), "typed_key": jax.random.key(seed), "b": jnp.arange(3, dtype=jnp.bfloat16) + seed}


def test_nested_state_with_same_shape_leaves_round_trips_bit_exact(tmp_path):
    s = _nested(5)
    path = checkpoint.save(tmp_path, 1, s, {"wall_time": 0.0})
    with np.load(path) as z:  # every leaf under its key path
        assert "state/['agent'].params['Dense_0']['kernel']" in z.files
        assert "state/['agent'].target['Dense_0']['kernel']" in z.files
    restored, meta, _, _ = checkpoint.load_latest(tmp_path, _nested(0))
    _assert_equal(restored, s)
    assert list(meta["leaves"]) == [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_leaves_with_path(s)]
    assert meta["leaves"]["['typed_key']"] == "key<threefry2x32>" and meta["leaves"]["['b']"] == "bfloat16"


def test_leaves_are_restored_by_name_not_by_position(tmp_path):
    """Saved from a state whose fields are declared target-first: each array goes back to its own name."""
    saved = _nets(1, NetsSwapped)
    checkpoint.save(tmp_path, 1, saved, {"wall_time": 0.0})
    restored, _, _, _ = checkpoint.load_latest(tmp_path, _nets(0))
    assert isinstance(restored, Nets)
    _assert_equal(restored.params, saved.params)
    _assert_equal(restored.target, saved.target)
    # a positional restore would have put the target parameters into params
    assert not np.array_equal(restored.params["Dense_0"]["kernel"], saved.target["Dense_0"]["kernel"])


@pytest.mark.parametrize("template, path", [
    ({"params": _nets(0).params, "online": _nets(0).target, "step": _nets(0).step},  # target renamed
     r"state\['online'\]\['Dense_0'\]\['bias'\] is not in the checkpoint \(it has state\['target'\]"),
    ({"params": _nets(0).params, "step": _nets(0).step},  # target missing from the template
     r"state\['target'\]\['Dense_0'\]\['bias'\] is in the checkpoint but not in this config's state"),
    ({**_nets(0)._asdict(), "extra": jnp.zeros(2)},  # an extra field in the template
     r"state\['extra'\] is not in the checkpoint;"),
])
def test_a_structure_mismatch_names_the_first_differing_path(tmp_path, template, path):
    checkpoint.save(tmp_path, 1, _nets(1)._asdict(), {"wall_time": 0.0})
    with pytest.raises(CheckpointError, match=path) as e:
        checkpoint.load_latest(tmp_path, template, warn=None)
    assert "\n" not in str(e.value) and str(e.value).startswith("resume: ")


def test_a_shape_or_dtype_mismatch_names_the_path_and_both(tmp_path):
    checkpoint.save(tmp_path, 1, _nets(1), {"wall_time": 0.0})
    wider = _nets(0)._replace(target={"Dense_0": {"kernel": jnp.zeros((4, 9)), "bias": jnp.ones(8)}})
    with pytest.raises(CheckpointError, match=r"state\.target\['Dense_0'\]\['kernel'\] is float32\[4, 8\], "
                                              r"expected float32\[4, 9\]"):
        checkpoint.load_latest(tmp_path, wider, warn=None)
    ints = _nets(0)._replace(step=jnp.asarray(0, jnp.int16))
    with pytest.raises(CheckpointError, match=r"state\.step is int32\[\], expected int16\[\]"):
        checkpoint.load_latest(tmp_path, ints, warn=None)


def test_typed_and_raw_keys_are_told_apart(tmp_path):
    s = {"k": jax.random.key(3, impl="rbg"), "raw": jax.random.PRNGKey(4)}
    checkpoint.save(tmp_path, 1, s, {"wall_time": 0.0})
    restored, _, _, _ = checkpoint.load_latest(tmp_path, {"k": jax.random.key(0, impl="rbg"),
                                                          "raw": jax.random.PRNGKey(0)})
    _assert_equal(restored, s)
    assert str(jax.random.key_impl(restored["k"])) == "rbg"
    with pytest.raises(CheckpointError, match=r"state\['raw'\] is uint32\[2\], expected key<threefry2x32>\[\]"):
        checkpoint.load_latest(tmp_path, {"k": jax.random.key(0, impl="rbg"), "raw": jax.random.key(0)}, warn=None)


def test_a_positional_format_1_file_is_refused(tmp_path):
    d = tmp_path / checkpoint.CKPT_DIR
    d.mkdir()
    meta = {"format": 1, "update": 1, "num_leaves": 1, "wall_time": 0.0}
    np.savez(d / "ckpt-000000000001.npz", **{"state/00000": np.zeros(3, np.float32),
                                             "__meta__": np.frombuffer(json.dumps(meta).encode(), np.uint8)})
    with pytest.raises(CheckpointError, match="written by an older jaxrl .* cannot be restored by name") as e:
        checkpoint.load_latest(tmp_path, {"w": jnp.zeros(3)}, warn=None)
    assert "\n" not in str(e.value)


def test_a_typed_key_of_another_shape_is_described_by_its_own_shape(tmp_path):
    checkpoint.save(tmp_path, 1, {"k": jax.random.split(jax.random.key(0), 3)}, {"wall_time": 0.0})
    with pytest.raises(CheckpointError,
                       match=r"state\[.k.\] is key<threefry2x32>\[3\], expected key<threefry2x32>\[2\]"):
        checkpoint.load_latest(tmp_path, {"k": jax.random.split(jax.random.key(0), 2)}, warn=None)
    with pytest.raises(CheckpointError, match=r"is key<threefry2x32> data\[3, 2\], expected key<rbg>\[3\]"):
        checkpoint.load_latest(tmp_path, {"k": jax.random.split(jax.random.key(0, impl="rbg"), 3)}, warn=None)
