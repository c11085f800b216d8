"""Checkpoint formats compared: jaxrl's single-file ``.npz`` against orbax-checkpoint.

    PYTHONPATH=. JAX_PLATFORMS=cpu .venv/bin/python benchmarks/checkpoint_formats.py            # ~10 minutes
    PYTHONPATH=. JAX_PLATFORMS=cpu .venv/bin/python benchmarks/checkpoint_formats.py --no-big --kill-trials 5

Formats (each writes the state pytree plus a small JSON ``meta``, keeps the last 2 checkpoints):

* ``npz``: :mod:`jaxrl.checkpoint` as it is in this tree (one file, ``os.replace``);
* ``orbax-std``: ``orbax.checkpoint.StandardCheckpointer`` (asynchronous; ``save`` then
  ``wait_until_finished``), one folder per checkpoint, the JSON next to it;
* ``orbax-mgr``: ``orbax.checkpoint.CheckpointManager(max_to_keep=2, cleanup_tmp_directories=True)`` with
  ``Composite(state=StandardSave, meta=JsonSave)``, the way an orbax user keeps the last N.

States: ``ppo`` (CartPole actor-critic, ~9k float32 params + Adam moments, ~40 leaves), ``dqn``
(online + target Q-net, Adam, a replay buffer of 100k CartPole transitions, ~4 MB), ``big`` (the
``dqn`` state plus a 100k x 84 x 84 uint8 frame buffer, 706 MB; ``--no-big`` skips it).

Per format and state: median save latency (until the data is on disk), median restore latency
(into device arrays), bytes on disk, number of files.  Then: import time of orbax, the Python
threads alive after ``save`` returns, whether ``save`` returns before the checkpoint exists, and
a kill test: ``--kill-trials`` subprocesses each save checkpoints 1-3 of the ``dqn`` state,
start checkpoint 4 and are SIGKILLed by the parent at a random moment within 1.2x the shortest
of saves 2-3 (so most kills land in the middle of the save); the parent then loads the newest
checkpoint with the format's own loader, checks it is bit-exact (3 or 4), saves once more and
counts leftovers of the killed save.

Writes ``benchmarks/results/checkpoint_formats.json``.
"""
from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import numpy as np  # noqa: E402

from _common import print_table, write_results  # noqa: E402

from jaxrl import checkpoint  # noqa: E402


# ---------------------------------------------------------------- states
def _mlp(rng, sizes):
    return {f"Dense_{i}": {"kernel": rng.normal(size=(a, b)).astype(np.float32), "bias": np.zeros(b, np.float32)}
            for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:]))}


def _adam(params):
    zeros = jax.tree_util.tree_map(np.zeros_like, params)
    return {"count": np.int32(3), "mu": zeros, "nu": jax.tree_util.tree_map(np.ones_like, params)}


def make_state(kind: str, seed: int = 0):
    """A state pytree of the given size class, deterministic in ``seed``, as device arrays."""
    rng = np.random.default_rng(seed)
    if kind == "ppo":
        params = {"actor": _mlp(rng, [4, 64, 64, 2]), "critic": _mlp(rng, [4, 64, 64, 1])}
        tree = {"params": params, "opt": _adam(params), "env": rng.normal(size=(4, 4)).astype(np.float32)}
    else:
        q = _mlp(rng, [4, 64, 64, 2])
        n = 100_000
        buf = {"obs": rng.normal(size=(n, 4)).astype(np.float32), "next_obs": rng.normal(size=(n, 4)).astype(np.float32),
               "action": rng.integers(0, 2, n).astype(np.int32), "reward": rng.normal(size=n).astype(np.float32),
               "done": rng.random(n) < 0.05, "pos": np.int32(seed)}
        if kind == "big":
            buf["frames"] = rng.integers(0, 255, (100_000, 84, 84), dtype=np.uint8)
        tree = {"params": q, "target": jax.tree_util.tree_map(np.copy, q), "opt": _adam(q), "buffer": buf}
    tree = jax.tree_util.tree_map(jax.numpy.asarray, tree)
    tree["key"] = jax.random.key(seed)
    return tree


# ---------------------------------------------------------------- formats
class Npz:
    name = "npz"

    def save(self, d, u, state):
        checkpoint.save(d, u, state, {"wall_time": 0.0}, keep=2)

    def final(self, d, u):
        return Path(d) / checkpoint.CKPT_DIR / f"ckpt-{u:012d}.npz"

    def wait(self):
        pass

    def latest(self, d, template):
        state, meta, _, _ = checkpoint.load_latest(d, template, warn=None)
        return state, meta["update"]


class OrbaxStd:
    name = "orbax-std"

    def __init__(self):
        import orbax.checkpoint as ocp

        self.ocp, self.ck = ocp, ocp.StandardCheckpointer()

    def save(self, d, u, state):
        import json

        d = Path(d)
        d.mkdir(parents=True, exist_ok=True)
        self.ck.save(d / f"ckpt-{u:012d}", state)
        (d / f"ckpt-{u:012d}.json").write_text(json.dumps({"wall_time": 0.0}))
        self._prune = self._done(d)[:-1]  # keep 2 once this one is final

    def final(self, d, u):
        return Path(d) / f"ckpt-{u:012d}"

    def wait(self):
        self.ck.wait_until_finished()
        for p in getattr(self, "_prune", []):
            shutil.rmtree(p, ignore_errors=True)
            p.with_suffix(".json").unlink(missing_ok=True)

    @staticmethod
    def _done(d):
        return sorted(p for p in Path(d).glob("ckpt-*") if p.is_dir() and "tmp" not in p.name)

    def latest(self, d, template):
        p = self._done(d)[-1]
        abstract = jax.tree_util.tree_map(self.ocp.utils.to_shape_dtype_struct, template)
        return self.ck.restore(p, abstract), int(p.name.split("-")[1])


class OrbaxMgr:
    name = "orbax-mgr"

    def __init__(self):
        import orbax.checkpoint as ocp

        self.ocp, self.mgr, self.dir = ocp, None, None

    def _manager(self, d):
        if self.dir != str(d):
            opts = self.ocp.CheckpointManagerOptions(max_to_keep=2, cleanup_tmp_directories=True)
            self.mgr, self.dir = self.ocp.CheckpointManager(Path(d).absolute(), options=opts), str(d)
        return self.mgr

    def save(self, d, u, state):
        a = self.ocp.args
        self._manager(d).save(u, args=a.Composite(state=a.StandardSave(state), meta=a.JsonSave({"wall_time": 0.0})))

    def wait(self):
        self.mgr.wait_until_finished()

    def final(self, d, u):
        return Path(d) / str(u)

    def latest(self, d, template):
        a, mgr = self.ocp.args, self._manager(d)
        step = mgr.latest_step()
        abstract = jax.tree_util.tree_map(self.ocp.utils.to_shape_dtype_struct, template)
        out = mgr.restore(step, args=a.Composite(state=a.StandardRestore(abstract), meta=a.JsonRestore()))
        return out["state"], step


FORMATS = {f.name: f for f in (Npz, OrbaxStd, OrbaxMgr)}


# ---------------------------------------------------------------- measurements
def _disk(d):
    files = [p for p in Path(d).rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files), len(files)


def _equal(a, b):
    ka, kb = (jax.tree_util.tree_map(lambda x: jax.random.key_data(x) if jax.dtypes.issubdtype(
        x.dtype, jax.dtypes.prng_key) else x, t) for t in (a, b))
    la, lb = jax.tree_util.tree_leaves_with_path(ka), jax.tree_util.tree_leaves_with_path(kb)
    return [p for p, _ in la] == [p for p, _ in lb] and all(
        np.asarray(x).dtype == np.asarray(y).dtype and np.array_equal(np.asarray(x), np.asarray(y))
        for (_, x), (_, y) in zip(la, lb))


def time_format(fmt, kind, reps, root):
    """Median save/restore seconds, bytes and files of one checkpoint (the last of ``reps`` saves)."""
    state, template = make_state(kind, 1), make_state(kind, 0)
    d = Path(tempfile.mkdtemp(dir=root))
    saves, restores = [], []
    for u in range(1, reps + 1):
        t0 = time.perf_counter()
        fmt.save(d, u, state)
        fmt.wait()
        saves.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        restored, step = fmt.latest(d, template)
        jax.block_until_ready(restored)
        restores.append(time.perf_counter() - t0)
    assert step == reps and _equal(restored, state), f"{fmt.name} {kind}: round trip is not bit-exact"
    total_bytes, n_files = _disk(d)
    shutil.rmtree(d)
    warm = saves[1:] or saves
    return {"format": fmt.name, "state": kind, "save_ms": 1e3 * statistics.median(warm), "first_save_ms": 1e3 * saves[0],
            "restore_ms": 1e3 * statistics.median(restores[1:] or restores), "MB_on_disk": total_bytes / 2 ** 20 / 2,
            "files_per_ckpt": n_files / 2, "reps": reps}


def import_seconds(module, reps=3):
    code = f"import jax, time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    return statistics.median(float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                                  env=env, check=True).stdout) for _ in range(reps))


def thread_check(fmt, root):
    """Threads alive when ``save`` returns, whether the checkpoint exists by then, and after ``wait``."""
    d = Path(tempfile.mkdtemp(dir=root))
    state = make_state("dqn", 1)
    before = {t.name for t in threading.enumerate()}
    fmt.save(d, 1, state)
    at_return = sorted({t.name for t in threading.enumerate()} - before)
    exists = fmt.final(d, 1).exists()
    fmt.wait()
    after_wait = sorted({t.name for t in threading.enumerate()} - before)
    shutil.rmtree(d)
    return {"format": fmt.name, "threads_at_save_return": at_return, "final_at_save_return": exists,
            "threads_after_wait": after_wait}


# ---------------------------------------------------------------- kill test
def kill_child(fmt_name, d):
    """Save checkpoints 1-3 of the dqn state, print the shortest save time, then save 4 (killed by the parent)."""
    fmt, times = FORMATS[fmt_name](), []
    for u in (1, 2, 3, 4):
        state = make_state("dqn", u)
        jax.block_until_ready(state)
        if u == 4:
            print(min(times[1:]), flush=True)
        t0 = time.perf_counter()
        fmt.save(d, u, state)
        fmt.wait()
        times.append(time.perf_counter() - t0)
    time.sleep(60)  # the parent's kill came after a complete save: it still comes


def _leftovers(d):
    """Temporary files or folders of an unfinished save (orbax: ``*.orbax-checkpoint-tmp*``; npz: ``.ckpt-*.tmp-*``)."""
    parts = [q.relative_to(d).parts for q in Path(d).rglob("*")]
    return len([p for p in parts if "tmp" in p[-1] and not any("tmp" in x for x in p[:-1])])


def kill_test(fmt_name, trials, root):
    """``trials`` children SIGKILLed by this process at a random moment within their save 4."""
    fmt, template = FORMATS[fmt_name](), make_state("dqn", 0)
    loaded, bad, partial, leftovers = {3: 0, 4: 0}, 0, 0, 0
    for _ in range(trials):
        d = Path(tempfile.mkdtemp(dir=root))
        p = subprocess.Popen([sys.executable, __file__, "--kill-child", fmt_name, str(d)], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True)
        save_s = float(p.stdout.readline())
        time.sleep(random.uniform(0, 1.2 * save_s))
        p.kill()
        assert p.wait() == -9
        partial += _leftovers(d)
        fmt = FORMATS[fmt_name]()
        try:
            state, step = fmt.latest(d, template)
            ok = step in loaded and _equal(state, make_state("dqn", step))
        except Exception as e:  # noqa: BLE001 -- any failure to load is the finding
            print(f"{fmt_name}: not loadable after kill: {type(e).__name__}: {e}"[:300], file=sys.stderr)
            ok = False
        if ok:
            loaded[step] += 1
        bad += not ok
        fmt.save(d, 5, make_state("dqn", 5))
        fmt.wait()
        leftovers += _leftovers(d)
        shutil.rmtree(d)
    return {"format": fmt_name, "trials": trials, "killed_before_commit": loaded[3], "killed_after_commit": loaded[4],
            "not_loadable": bad, "partial_files_after_kill": partial, "partial_files_after_next_save": leftovers}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--no-big", action="store_true", help="skip the 706 MB state")
    ap.add_argument("--kill-trials", type=int, default=20)
    ap.add_argument("--kill-child", nargs=2, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.kill_child:
        return kill_child(*a.kill_child)
    root = tempfile.mkdtemp(prefix="ckpt-bench-")
    try:
        imports = {m: import_seconds(m) for m in ("jaxrl.checkpoint", "orbax.checkpoint")}
        kinds = [("ppo", 20), ("dqn", 10)] + ([] if a.no_big else [("big", 3)])
        rows = [time_format(FORMATS[f](), k, n, root) for k, n in kinds for f in FORMATS]
        print_table(rows, ["state", "format", "save_ms", "first_save_ms", "restore_ms", "MB_on_disk", "files_per_ckpt"])
        threads = [thread_check(FORMATS[f](), root) for f in FORMATS]
        for t in threads:
            print(f"{t['format']}: checkpoint final when save returns: {t['final_at_save_return']}; new threads then: "
                  f"{t['threads_at_save_return']}; after wait: {t['threads_after_wait']}")
        print(f"import seconds (after jax): {imports}")
        kills = [kill_test(f, a.kill_trials, root) for f in FORMATS] if a.kill_trials else []
        print_table(kills, ["format", "trials", "killed_before_commit", "killed_after_commit", "not_loadable",
                            "partial_files_after_kill", "partial_files_after_next_save"])
    finally:
        shutil.rmtree(root, ignore_errors=True)
    path = write_results("checkpoint_formats", rows + kills, {"import_seconds": imports, "threads": threads})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
