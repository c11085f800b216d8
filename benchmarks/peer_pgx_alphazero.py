"""Self-play throughput (moves/s) of pgx's own AlphaZero example on connect four, 1 device, for a comparison
with the ``search_only`` rows of ``alphazero_throughput.py``.

Run with the Python of the separate virtualenv that has pgx, mctx and dm-haiku (never a jaxrl dependency;
this script does not import jaxrl)::

    JAX_PLATFORMS=cpu /work/peers/pgx-az/bin/python benchmarks/peer_pgx_alphazero.py
    /work/peers/pgx-az/bin/python benchmarks/peer_pgx_alphazero.py --sims 2 --games 4 --moves 2 --repeats 1

How the example's code is reused. ``network.py`` is imported as it is (``AZNet``). ``train.py`` cannot be
imported: at import it needs ``wandb`` (not installed here), parses ``sys.argv`` with
``OmegaConf.from_cli()`` and calls ``pgx.make_baseline_model(env_id + "_v0")``, which has no connect four
model (it fails an ``assert``). So its source is parsed with ``ast`` and only these top-level statements are
executed, unchanged, in a fresh namespace per row: its imports (minus ``wandb`` and ``omegaconf``),
``devices``/``num_devices``, ``class Config``, ``forward_fn``, ``forward = hk.without_apply_rng(...)``,
``recurrent_fn``, ``class SelfplayOutput`` and the ``@jax.pmap``-decorated ``selfplay``. In the upstream file
(pgx's ``examples/alphazero/train.py``, as kept in ``/work/peers/pgx-az/alphazero/``) those are lines
22-35, 39-58, 69-80, 84-109, 112-117 and 120-164; the lines actually found are written to the JSON. This
script supplies only what lines 61-66 would have built: ``config`` (a ``Config`` with ``env_id=connect_four``
and the sizes below) and ``env = pgx.make("connect_four")``. The model is initialised as lines 265-267 do
(``forward.init(PRNGKey(0), ...)`` on two dummy observations) and given a leading device axis (the
``device_put_replicated`` of line 270, gone from this JAX), and keys are split as lines 328-330 do.

So each timed call is the example's ``selfplay``: ``vmap(env.init)`` of ``--games`` games, then a
``lax.scan`` of ``--moves`` steps, each one ``forward.apply(..., is_eval=True)`` at the root,
``mctx.gumbel_muzero_policy`` (``qtransform_completed_by_mix_value``, ``gumbel_scale=1.0``, ``--sims``
simulations, ``recurrent_fn`` stepping ``env.step`` and the net) and ``vmap(auto_reset(env.step, env.init))``.
``moves_per_s = games * moves / best seconds``, where ``games`` = ``selfplay_batch_size`` (one device) and
``moves`` = ``max_num_steps``. Defaults match jaxrl's row: 64 games in lockstep, 64 moves (8 updates x 8
moves) per call.

Network sizes. jaxrl's tower (``jaxrl/networks/resnet.py``): 3x3 stem to 32 channels, 2 residual blocks of
two 3x3 convolutions of 32 channels, no batch norm, policy head 1x1 conv to 2 planes + dense, value head
1x1 conv to 1 plane + dense 64 + dense 1. The closest ``AZNet``: ``num_channels=--channels`` (32),
``num_blocks=--blocks`` (2, ``Config.num_layers``), and the example's own ``resnet_v2=True`` (pre-activation;
``--resnet-v1`` picks post-activation blocks, jaxrl's ordering). Same convolutions; differences: ``AZNet`` adds
batch norm (eval mode, an affine op per layer at search time) and its value hidden layer has
``num_channels`` (32) units where jaxrl's has 64.

Compilation is separate from timing (``selfplay.lower(...).compile()``; then ``--repeats`` timed calls, each
blocked until ready, best kept). Writes ``--out`` (default ``benchmarks/results/peer_pgx_alphazero.json``)
with the versions of jax, jaxlib, pgx, mctx and haiku, the settings and the rows.
"""
import argparse
import ast
import datetime
import hashlib
import json
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402

EXAMPLE_DIR = Path("/work/peers/pgx-az/alphazero")
NEEDED = ("Config", "forward_fn", "forward", "recurrent_fn", "SelfplayOutput", "selfplay")
SKIPPED_IMPORTS = ("wandb", "omegaconf")
ENV_ID = "connect_four"


def _names(node):
    """Names a top-level statement binds (only the kinds that train.py's needed statements are)."""
    if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
        return [node.name]
    if isinstance(node, ast.Assign):
        return [t.id for t in node.targets if isinstance(t, ast.Name)]
    return []


def _selected_nodes(source):
    """train.py's statements to run: imports (minus wandb/omegaconf), devices, num_devices and NEEDED."""
    picked, lines = [], {}
    for node in ast.parse(source).body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            mods = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            if any(m.split(".")[0] in SKIPPED_IMPORTS for m in mods):
                continue
            picked.append(node)
            continue
        names = _names(node)
        if any(n in NEEDED + ("devices", "num_devices") for n in names):
            picked.append(node)
            start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
            lines[names[0]] = [start, node.end_lineno]
    missing = [n for n in NEEDED if n not in lines]
    if missing:
        raise SystemExit(f"train.py has no top-level {missing}: the example changed, update this script")
    return picked, lines


def load_example(example_dir, config_kwargs):
    """A fresh namespace holding the example's definitions, with ``config`` and ``env`` set.

    Fresh per row: ``selfplay`` reads ``config`` (simulations, batch, steps) at trace time and ``jax.pmap``
    caches traces by argument shapes only, so reusing one namespace across settings would reuse a stale trace.
    """
    import pgx

    path = Path(example_dir) / "train.py"
    source = path.read_text()
    nodes, lines = _selected_nodes(source)
    if str(example_dir) not in sys.path:
        sys.path.insert(0, str(example_dir))  # for train.py's ``from network import AZNet``
    ns = {"__name__": "pgx_alphazero_train_subset", "__file__": str(path)}
    exec(compile(ast.Module(body=nodes, type_ignores=[]), str(path), "exec"), ns)
    ns["config"] = ns["Config"](**config_kwargs)
    ns["env"] = pgx.make(ns["config"].env_id)
    info = {"train_py": str(path), "train_py_sha256": hashlib.sha256(source.encode()).hexdigest(),
            "lines_executed": lines, "imports_skipped": list(SKIPPED_IMPORTS)}
    return ns, info


def row_for(example_dir, sims, games, moves, channels, blocks, resnet_v2, repeats, seed):
    ns, info = load_example(example_dir, dict(
        env_id=ENV_ID, seed=seed, num_channels=channels, num_layers=blocks, resnet_v2=resnet_v2,
        selfplay_batch_size=games, num_simulations=sims, max_num_steps=moves))
    env, forward, selfplay, devices = ns["env"], ns["forward"], ns["selfplay"], ns["devices"]
    if ns["num_devices"] != 1:
        raise SystemExit(f"expected 1 device, JAX sees {ns['num_devices']}: set JAX_PLATFORMS=cpu")

    # as train.py lines 265-270: init on two dummy observations, then a leading device axis
    dummy_state = jax.vmap(env.init)(jax.random.split(jax.random.PRNGKey(0), 2))
    model = forward.init(jax.random.PRNGKey(0), dummy_state.observation)
    model = jax.device_put(jax.tree_util.tree_map(lambda x: x[None], model), devices[0])
    # as lines 328-329
    _, subkey = jax.random.split(jax.random.PRNGKey(seed))
    keys = jax.random.split(subkey, ns["num_devices"])
    jax.block_until_ready((model, keys))

    t0 = time.perf_counter()
    compiled = selfplay.lower(model, keys).compile()
    compile_s = time.perf_counter() - t0
    jax.block_until_ready(compiled(model, keys))  # first run (allocations), not timed
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        data = compiled(model, keys)
        jax.block_until_ready(data)
        times.append(time.perf_counter() - t0)
    n_moves = int(data.terminated.shape[0] * data.terminated.shape[1] * data.terminated.shape[2])
    if n_moves != games * moves:
        raise SystemExit(f"selfplay returned {data.terminated.shape}, expected (1, {moves}, {games})")
    best = min(times)
    return dict(env=ENV_ID, sims=sims, games=games, moves=moves, channels=channels, blocks=blocks,
                resnet_v2=resnet_v2, moves_per_s=n_moves / best, best_s=best, times_s=times,
                compile_s=compile_s, games_finished=int(data.terminated.sum())), info


def versions():
    out = {"python": platform.python_version()}
    for name, mod in (("jax", "jax"), ("jaxlib", "jaxlib"), ("pgx", "pgx"), ("mctx", "mctx"),
                      ("haiku", "haiku"), ("pydantic", "pydantic")):
        try:
            out[name] = __import__(mod).__version__
        except Exception as e:  # pragma: no cover - reported, not fatal
            out[name] = f"unavailable: {e}"
    return out


def print_table(rows, columns):
    def cell(v):
        if isinstance(v, float):
            return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.3g}"
        return f"{v:,}" if isinstance(v, int) and not isinstance(v, bool) else str(v)

    cells = [[cell(r.get(c, "-")) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(x[i]) for x in cells]) for i, c in enumerate(columns)]
    print("  ".join(c.rjust(w) for c, w in zip(columns, widths)))
    print("  ".join("-" * w for w in widths))
    for x in cells:
        print("  ".join(v.rjust(w) for v, w in zip(x, widths)))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sims", type=int, nargs="+", default=[32, 128], help="simulations per move")
    p.add_argument("--games", type=int, default=64, help="games in lockstep (selfplay_batch_size)")
    p.add_argument("--moves", type=int, default=64, help="moves per compiled scan (max_num_steps)")
    p.add_argument("--channels", type=int, default=32, help="AZNet num_channels")
    p.add_argument("--blocks", type=int, default=2, help="AZNet residual blocks (Config.num_layers)")
    p.add_argument("--resnet-v1", action="store_true", help="post-activation blocks (default: v2, the example's)")
    p.add_argument("--repeats", type=int, default=3, help="timed calls per row, best kept")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--example-dir", default=str(EXAMPLE_DIR), help="folder with train.py and network.py")
    p.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "peer_pgx_alphazero.json"))
    a = p.parse_args(argv)

    rows, info = [], None
    for sims in a.sims:
        row, info = row_for(a.example_dir, sims, a.games, a.moves, a.channels, a.blocks, not a.resnet_v1,
                            a.repeats, a.seed)
        rows.append(row)
    print_table(rows, ["sims", "games", "moves", "moves_per_s", "compile_s"])

    try:
        load = os.getloadavg()
    except OSError:
        load = None
    payload = {
        "machine": {"timestamp": datetime.datetime.now().isoformat(timespec="seconds"),
                    "hostname": platform.node(), "platform": platform.platform(), "cpu_count": os.cpu_count(),
                    "backend": jax.default_backend(), "device_count": jax.device_count(),
                    "device_kind": jax.devices()[0].device_kind, "XLA_FLAGS": os.environ.get("XLA_FLAGS", ""),
                    "JAX_PLATFORMS": os.environ.get("JAX_PLATFORMS", ""), "load_average": load},
        "versions": versions(),
        "meta": {"peer": "pgx examples/alphazero (selfplay)", "settings": vars(a), "example": info,
                 "moves_per_s": "games * moves / best seconds of one compiled selfplay call"},
        "rows": rows,
    }
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2))
    os.replace(tmp, out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
