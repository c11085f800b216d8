"""The checkpoint file format: bit-exact round trip, atomic under a kill during save, refuses
damaged or mismatched files, falls back to the previous good checkpoint."""
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
