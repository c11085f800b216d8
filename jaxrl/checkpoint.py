"""Checkpoints of the whole training state: one atomic ``.npz`` file per checkpoint, every array
stored under its key path.

Layout: ``RUN_DIR/checkpoints/ckpt-<update, 12 digits>.npz`` (:data:`PATTERN`), holding

* ``state/<key path>``  every leaf of the agent state pytree (params, optimizer state, target
  params, replay buffer, PRNG keys, counters, env state) as a NumPy array, named by
  ``jax.tree_util.keystr`` of its path, e.g. ``state/.params['actor']['Dense_0']['kernel']``;
  typed PRNG keys are stored as their key data;
* ``x/<name>``          driver arrays (the metrics and evaluation history, so a resumed run rewrites
  ``metrics.csv`` exactly);
* ``__meta__``          a JSON object: format version, update, wall time, ..., and ``leaves``, every
  key path in tree order with its dtype (``bfloat16``, ``key<threefry2x32>``, ...).

Restoring goes by name: the template (``agent.init`` of the same config) gives the tree structure
and each of its leaves takes the array saved under its own key path, so two leaves of the same
shape (DQN's online and target parameters) can never trade places.  A missing, extra or renamed
path, or a shape or dtype that differs, is a one-line :class:`CheckpointError` naming the first
differing path.  Files of format 1 (leaves by position, ``state/00000``) are refused.

Atomicity: a checkpoint is written to a hidden temporary file in the same folder, flushed and
``fsync``-ed, then ``os.replace``-d into place (atomic on POSIX) and the folder is ``fsync``-ed.
A kill at any moment leaves either the old set of checkpoints or the old set plus the new one;
temporary leftovers are ignored and cleaned up by the next save.  The last ``keep`` checkpoints
are kept, so even a file damaged after the fact (disk error) falls back to the one before.

Why not orbax-checkpoint 0.12.8 (measured 2026-12-03 on a 2-core VM, ``docs/checkpoints.md``,
``benchmarks/checkpoint_formats.py``): it restores by name too, and with either format each of
20 kills -9 per format (11-17 of them mid-save) left a loadable checkpoint; but saving the small
states that the driver writes every few seconds took 58-74 ms against 2-7 ms here (8-30x;
restore 25-36 ms against 4-5 ms); ``save`` returns before the checkpoint exists, with six worker
threads running until ``wait_until_finished``; a checkpoint is 14-17 files; and multi-process
saving has every process write its own shards into one shared folder, where jaxrl's hosts need
no shared filesystem (process 0 writes the gathered arrays, every process reads its own copy).
"""
from __future__ import annotations

import dataclasses
import json
import os
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from jaxrl.config import ConfigError
from jaxrl.core.agent import ENV_FIELDS  # the state fields that belong to the environment

FORMAT_VERSION = 2
CKPT_DIR = "checkpoints"
PATTERN = f"{CKPT_DIR}/ckpt-*.npz"  # human-readable, for messages


class CheckpointError(ConfigError):
    """A checkpoint that cannot be used (missing, damaged, old, or from a different config)."""


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _is_key(x) -> bool:
    import jax

    return hasattr(x, "dtype") and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def _dtype_name(x) -> str:
    """``float32``, ``bfloat16``, ... or ``key<impl>`` for a typed PRNG key array."""
    import jax

    return f"key<{jax.random.key_impl(x)}>" if _is_key(x) else np.dtype(x.dtype).name


def _shape(x) -> tuple:
    """The shape of the array stored for ``x`` (a typed key adds its key-data dimensions)."""
    import jax

    return tuple(jax.random.key_data(x).shape if _is_key(x) else np.shape(x))


def _leaf_to_numpy(x) -> np.ndarray:
    import jax

    from jaxrl.parallel import to_host

    if _is_key(x):
        x = jax.random.key_data(x)
    return to_host(x)  # an array spread over several processes is all-gathered (a collective)


def _named_leaves(tree) -> list[tuple[str, Any]]:
    """``(key path, leaf)`` in tree order, e.g. ``(".params['w']", array)``; names must be unique."""
    import jax

    named = [(jax.tree_util.keystr(p), x) for p, x in jax.tree_util.tree_leaves_with_path(tree)]
    if len({n for n, _ in named}) != len(named):
        raise ValueError("checkpoint: two leaves of the state have the same key path")
    return named


def _place(a: np.ndarray, sharding):
    """``a`` (the same full array on every process) with ``sharding``: each process keeps its shards."""
    import jax

    if sharding is None:
        return a
    if sharding.is_fully_addressable:
        return jax.device_put(a, sharding)
    return jax.make_array_from_callback(a.shape, sharding, lambda idx: a[idx])


def list_checkpoints(run_dir) -> list[Path]:
    """Complete checkpoints of a run, oldest first."""
    d = Path(run_dir) / CKPT_DIR
    if not d.is_dir():
        return []
    return sorted(p for p in d.glob("ckpt-*.npz") if not p.name.startswith("."))


def _write_atomic(path: Path, arrays: dict, write) -> Path:
    """Write ``arrays`` to a hidden temporary file, fsync it, rename it to ``path``; returns the temp name."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as f:
        write(f, **arrays)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)
    return tmp


def save(run_dir, update: int, state, meta: dict, extras: dict | None = None, keep: int = 2,
         _write=None) -> Path:
    """Atomically write checkpoint ``update`` of ``state`` and keep the last ``keep`` checkpoints.

    Multi-host: call it on every process.  Arrays that span several processes are all-gathered
    to each of them (a collective), and only process 0 writes; every process returns the path.
    """
    import jax

    d = Path(run_dir) / CKPT_DIR
    named = _named_leaves(state)
    arrays = {f"state/{n}": _leaf_to_numpy(x) for n, x in named}
    path = d / f"ckpt-{int(update):012d}.npz"
    if jax.process_index() != 0:
        return path
    d.mkdir(parents=True, exist_ok=True)
    for k, v in (extras or {}).items():
        arrays[f"x/{k}"] = np.asarray(v)
    leaves = {n: _dtype_name(x) for n, x in named}
    full_meta = dict(meta, format=FORMAT_VERSION, update=int(update), leaves=leaves)
    arrays["__meta__"] = np.frombuffer(json.dumps(full_meta).encode(), np.uint8)
    tmp = _write_atomic(path, arrays, _write or np.savez)
    for old in list_checkpoints(run_dir)[:-keep] if keep > 0 else []:
        old.unlink(missing_ok=True)
    for stale in d.glob(".ckpt-*.tmp-*"):  # leftovers of killed saves
        if stale != tmp:
            stale.unlink(missing_ok=True)
    return path


def _load_file(path: Path) -> tuple[dict, dict]:
    """All arrays of a checkpoint file and its metadata; a damaged or old file is a CheckpointError."""
    try:
        with np.load(path, allow_pickle=False) as z:
            files = {k: z[k] for k in z.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, KeyError) as e:
        first = str(e).splitlines()[0] if str(e) else ""
        raise CheckpointError("resume", f"{path} is damaged ({type(e).__name__}: {first})")
    try:
        meta = json.loads(files.pop("__meta__").tobytes().decode())
    except (KeyError, ValueError, UnicodeDecodeError):
        raise CheckpointError("resume", f"{path} has no readable metadata")
    if meta.get("format") == 1:
        raise CheckpointError("resume", f"{path} was written by an older jaxrl (format 1, arrays by position) and "
                                        f"cannot be restored by name; resume it with that jaxrl or start a new run")
    if meta.get("format") != FORMAT_VERSION or not isinstance(meta.get("leaves"), dict):
        raise CheckpointError("resume", f"{path} has format {meta.get('format')!r}; this jaxrl reads {FORMAT_VERSION}")
    return files, meta


def _first_difference(path: Path, saved: dict, wanted: dict) -> str | None:
    """The first key path (in tree order) at which the checkpoint and the template differ, described."""
    missing = [n for n in wanted if n not in saved]
    extra = [n for n in saved if n not in wanted]
    if missing:
        instead = f" (it has state{extra[0]} instead)" if extra else ""
        return f"{path}: state{missing[0]} is not in the checkpoint{instead}; different algorithm or config?"
    if extra:
        return (f"{path}: state{extra[0]} is in the checkpoint but not in this config's state; "
                f"different algorithm or config?")
    return None


def _describe(dtype: str, data_shape: tuple, t) -> str:
    """``float32[3, 4]``; a typed key shows its own shape (``key<threefry2x32>[]``), not its data's."""
    if dtype.startswith("key<"):
        if dtype != _dtype_name(t):
            return f"{dtype} data{list(data_shape)}"
        data_shape = data_shape[:len(data_shape) - (len(_shape(t)) - np.ndim(t))]
    return f"{dtype}{list(data_shape)}"


def _check_leaf(path: Path, name: str, a, dtype: str, t) -> np.ndarray:
    """The stored array ``a`` (saved with ``dtype``) checked against template leaf ``t``."""
    want_dtype, want_shape = _dtype_name(t), _shape(t)
    if a is not None and a.dtype.kind == "V" and not _is_key(t) and a.dtype.itemsize == np.dtype(t.dtype).itemsize:
        a = a.view(np.dtype(t.dtype))  # npz stores ml_dtypes (bfloat16, float8) as raw bytes
    stored_ok = _is_key(t) or (a is not None and a.dtype == np.dtype(t.dtype))
    if a is None or dtype != want_dtype or a.shape != want_shape or not stored_ok:
        got = "missing" if a is None else _describe(dtype, a.shape, t)
        raise CheckpointError("resume", f"{path}: state{name} is {got}, expected "
                                        f"{_describe(want_dtype, want_shape, t)}; different config?")
    return a


def _restore_leaf(a: np.ndarray, t):
    """``a`` placed like template leaf ``t`` (its sharding; a typed key rewrapped with its impl)."""
    import jax

    if _is_key(t):
        return jax.random.wrap_key_data(_place(a, t.sharding), impl=jax.random.key_impl(t))
    return _place(a, getattr(t, "sharding", None))


def read(path: Path, template) -> tuple[Any, dict, dict]:
    """Load one checkpoint file against ``template`` (a state pytree of the same config), by key path."""
    import jax

    files, meta = _load_file(path)
    named = _named_leaves(template)
    problem = _first_difference(path, meta["leaves"], dict(named))
    if problem:
        raise CheckpointError("resume", problem)
    leaves = [_restore_leaf(_check_leaf(path, n, files.get(f"state/{n}"), meta["leaves"][n], t), t) for n, t in named]
    extras = {k[2:]: v for k, v in files.items() if k.startswith("x/")}
    return jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(template), leaves), meta, extras


def load_latest(run_dir, template, warn=True) -> tuple[Any, dict, dict, Path]:
    """The newest readable checkpoint; a damaged newest one falls back to the one before, with a
    warning on ``warn`` (a stream; True: stderr; None: silent)."""
    warn = sys.stderr if warn is True else warn
    ckpts = list_checkpoints(run_dir)
    if not ckpts:
        raise CheckpointError("resume", f"{run_dir} has no checkpoint ({PATTERN}) to resume from")
    first_err = None
    for path in reversed(ckpts):
        try:
            state, meta, extras = read(path, template)
        except CheckpointError as e:
            first_err = first_err or e
            if warn is not None:
                print(f"jaxrl: warning: skipping {path.name}: {str(e).split(': ', 1)[-1]}", file=warn)
            continue
        return state, meta, extras, path
    raise first_err


def splice_env(restored, fresh):
    """Replace every ``env_state``/``obs`` field of ``restored`` by the one of ``fresh``.

    Used on envpool, whose env state lives in a C++ pool: a resumed run starts fresh episodes.
    """
    if isinstance(restored, tuple) and hasattr(restored, "_fields"):
        return type(restored)(*(getattr(fresh, n) if n in ENV_FIELDS else splice_env(getattr(restored, n),
                                                                                     getattr(fresh, n))
                                for n in restored._fields))
    if dataclasses.is_dataclass(restored) and not isinstance(restored, type):
        kw = {f.name: (getattr(fresh, f.name) if f.name in ENV_FIELDS
                       else splice_env(getattr(restored, f.name), getattr(fresh, f.name)))
              for f in dataclasses.fields(restored) if f.init}
        return dataclasses.replace(restored, **kw)
    if isinstance(restored, dict):
        return {k: (fresh[k] if k in ENV_FIELDS else splice_env(v, fresh[k])) for k, v in restored.items()}
    if isinstance(restored, (list, tuple)):
        return type(restored)(splice_env(r, f) for r, f in zip(restored, fresh))
    return restored


def _under(name: str, prefix: str) -> bool:
    """``.params['w']`` is under ``.params``; ``.params_v`` is not."""
    return name == prefix or (name.startswith(prefix) and name[len(prefix)] in "[.")


def load_leaves(run_dir, template, prefixes, root: str = "") -> tuple[dict, Path]:
    """The leaves of ``template`` (a batched state ``[B, ...]``, arrays or ShapeDtypeStructs) under the key
    paths ``prefixes`` (``[".params"]``), taken from the newest checkpoint of ``run_dir``: ``({key path:
    array [B, ...]}, checkpoint)``. A checkpoint of one batch member serves every member. Every mismatch
    (no leaf under a prefix, a leaf missing, another shape or dtype, another batch) is a one-line
    :class:`CheckpointError` for ``--init-from``. ``root``: where ``template`` sits in the saved tree
    (the driver saves ``{"agent": state, ...}``: ``"['agent']"``)."""
    ckpts = list_checkpoints(run_dir)
    if not ckpts:
        raise CheckpointError("init_from", f"{run_dir} has no checkpoint ({PATTERN})")
    path = ckpts[-1]
    files, meta = _load_file(path)
    named = [(n, t) for n, t in _named_leaves(template) if any(_under(n, p) for p in prefixes)]
    if not named:
        tops = sorted({n.split("[")[0].split(".")[1] for n, _ in _named_leaves(template) if n.startswith(".")})
        raise CheckpointError("init_keys", f"no leaf of this run's state is under {', '.join(prefixes)}; its fields: "
                                           f"{', '.join('.' + t for t in tops)}")
    out = {}
    for n, t in named:
        if _is_key(t):
            raise CheckpointError("init_keys", f"state{n} is a PRNG key; initialise parameters only")
        a = files.get(f"state/{root}{n}")
        want = f"{np.dtype(t.dtype).name}[{', '.join(map(str, t.shape[1:]))}]"
        if a is None:
            raise CheckpointError("init_from", f"{path}: state{n} is not in the checkpoint; different algorithm "
                                               f"or network?")
        got = f"{meta['leaves'].get(root + n, a.dtype.name)}[{', '.join(map(str, a.shape[1:]))}]"
        if got != want:
            raise CheckpointError("init_from", f"{path}: state{n} is {got} per member, this run needs {want}; "
                                               f"give the same network and env options as that run")
        if a.shape[0] not in (1, t.shape[0]):
            raise CheckpointError("init_from", f"{run_dir} has {a.shape[0]} seeds/sweep points, this run {t.shape[0]}; "
                                               f"give the same --num-seeds and --sweep (or init from a 1-seed run)")
        out[n] = np.broadcast_to(a, t.shape)
    return out, path


def put_leaves(state, leaves: dict):
    """``state`` with the leaves named in ``leaves`` (key path -> array) replaced, placed like the old ones."""
    import jax

    def pick(p, x):
        a = leaves.get(jax.tree_util.keystr(p))
        return x if a is None else _place(np.ascontiguousarray(a), getattr(x, "sharding", None))

    return jax.tree_util.tree_map_with_path(pick, state)
