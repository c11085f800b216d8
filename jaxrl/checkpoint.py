"""Checkpoints of the whole training state: one atomic ``.npz`` file per checkpoint.

Layout: ``RUN_DIR/checkpoints/ckpt-<update, 12 digits>.npz``, holding

* ``state/00000 ...``  every leaf of the agent state pytree (params, optimizer state, target params,
  replay buffer, PRNG keys, counters, env state) as a NumPy array, in ``tree_flatten`` order;
  typed PRNG keys are stored as their key data;
* ``x/<name>``         driver arrays (the metrics and evaluation history, so a resumed run rewrites
  ``metrics.csv`` exactly);
* ``__meta__``         a JSON object (format version, update, env steps, wall time, ...).

The tree structure is not stored: it comes from the code, as a template (``agent.init`` of the same
config).  Loading checks the leaf count, shapes and dtypes against the template, so a checkpoint
from another config or a damaged file is refused, never silently misread.

Atomicity: a checkpoint is written to a hidden temporary file in the same folder, flushed and
``fsync``-ed, then ``os.replace``-d into place (atomic on POSIX) and the folder is ``fsync``-ed.
A kill at any moment leaves either the old set of checkpoints or the old set plus the new one;
temporary leftovers are ignored and cleaned up by the next save.  The last ``keep`` checkpoints
are kept, so even a file damaged after the fact (disk error) falls back to the one before.

Why not orbax-checkpoint: it writes a folder of many files through background threads (which race
with the SIGINT/SIGTERM handling of the driver), needs its own sharding metadata for restore, and
its atomicity lives in internals that a test cannot interrupt deterministically.  A single file per
checkpoint through ``os.replace`` is bit-exact (raw array bytes), has one obvious failure mode,
and its kill-during-save behaviour is tested (``tests/test_checkpoint.py``).
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

FORMAT_VERSION = 1
CKPT_DIR = "checkpoints"
ENV_FIELDS = ("env_state", "obs")


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


def _leaf_to_numpy(x) -> np.ndarray:
    import jax

    from jaxrl.parallel import to_host

    if _is_key(x):
        x = jax.random.key_data(x)
    return to_host(x)  # an array spread over several processes is all-gathered (a collective)


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


def save(run_dir, update: int, state, meta: dict, extras: dict | None = None, keep: int = 2,
         _write=None) -> Path:
    """Atomically write checkpoint ``update`` of ``state`` and keep the last ``keep`` checkpoints.

    Multi-host: call it on every process.  Arrays that span several processes are all-gathered
    to each of them (a collective), and only process 0 writes; every process returns the path.
    """
    import jax

    d = Path(run_dir) / CKPT_DIR
    leaves = jax.tree_util.tree_leaves(state)
    arrays = {f"state/{i:05d}": _leaf_to_numpy(x) for i, x in enumerate(leaves)}
    path = d / f"ckpt-{int(update):012d}.npz"
    if jax.process_index() != 0:
        return path
    d.mkdir(parents=True, exist_ok=True)
    for k, v in (extras or {}).items():
        arrays[f"x/{k}"] = np.asarray(v)
    full_meta = dict(meta, format=FORMAT_VERSION, update=int(update), num_leaves=len(leaves))
    arrays["__meta__"] = np.frombuffer(json.dumps(full_meta).encode(), np.uint8)
    tmp = d / f".{path.name}.tmp-{os.getpid()}"
    with open(tmp, "wb") as f:
        (_write or np.savez)(f, **arrays)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(d)
    for old in list_checkpoints(run_dir)[:-keep] if keep > 0 else []:
        old.unlink(missing_ok=True)
    for stale in d.glob(".ckpt-*.tmp-*"):  # leftovers of killed saves
        if stale != tmp:
            stale.unlink(missing_ok=True)
    return path


class CheckpointError(ConfigError):
    """A checkpoint that cannot be used (missing, damaged, or from a different config)."""


def read(path: Path, template) -> tuple[Any, dict, dict]:
    """Load one checkpoint file against ``template`` (a state pytree of the same config)."""
    import jax

    try:
        with np.load(path, allow_pickle=False) as z:
            files = {k: z[k] for k in z.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, KeyError) as e:
        raise CheckpointError("resume", f"{path} is damaged ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})")
    try:
        meta = json.loads(files.pop("__meta__").tobytes().decode())
    except (KeyError, ValueError, UnicodeDecodeError):
        raise CheckpointError("resume", f"{path} has no readable metadata")
    if meta.get("format") != FORMAT_VERSION:
        raise CheckpointError("resume", f"{path} has format {meta.get('format')!r}; this jaxrl reads {FORMAT_VERSION}")
    t_leaves, treedef = jax.tree_util.tree_flatten(template)
    if meta.get("num_leaves") != len(t_leaves):
        raise CheckpointError("resume", f"{path} holds {meta.get('num_leaves')} arrays but this config's state has "
                                        f"{len(t_leaves)}; it was written by a different algorithm or config")
    leaves = []
    for i, t in enumerate(t_leaves):
        a = files.get(f"state/{i:05d}")
        want = np.asarray(jax.random.key_data(t)) if _is_key(t) else t
        if a is not None and a.dtype.kind == "V" and a.dtype.itemsize == np.dtype(want.dtype).itemsize:
            a = a.view(np.dtype(want.dtype))  # npz stores ml_dtypes (bfloat16, float8) as raw bytes
        if a is None or a.shape != tuple(want.shape) or a.dtype != np.dtype(want.dtype):
            got = "missing" if a is None else f"{a.dtype}{list(a.shape)}"
            raise CheckpointError("resume", f"{path}: state array {i} is {got}, expected "
                                            f"{np.dtype(want.dtype)}{list(want.shape)}; different config?")
        if _is_key(t):
            leaves.append(jax.random.wrap_key_data(_place(a, t.sharding), impl=jax.random.key_impl(t)))
        else:
            leaves.append(_place(a, getattr(t, "sharding", None)))
    extras = {k[2:]: v for k, v in files.items() if k.startswith("x/")}
    return jax.tree_util.tree_unflatten(treedef, leaves), meta, extras


def load_latest(run_dir, template, warn=True) -> tuple[Any, dict, dict, Path]:
    """The newest readable checkpoint; a damaged newest one falls back to the one before, with a
    warning on ``warn`` (a stream; True: stderr; None: silent)."""
    warn = sys.stderr if warn is True else warn
    ckpts = list_checkpoints(run_dir)
    if not ckpts:
        raise CheckpointError("resume", f"{run_dir} has no checkpoint ({CKPT_DIR}/ckpt-*.npz) to resume from")
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
