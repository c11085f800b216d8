"""Shared timing and reporting helpers for the scripts in ``benchmarks/``.

Every benchmark times *execution only*: compile ahead of time with :func:`compile_timed`
(``jitted.lower(*args).compile()``), then call the compiled function through
:func:`timed_run`, which blocks until every output is ready.  Results go to
``benchmarks/results/NAME.json`` with :func:`machine_info` as metadata, so a figure can
always be traced back to the machine, JAX version and XLA flags that produced it.

    compiled, compile_s = compile_timed(jax.jit(fn), *args)
    seconds, out = timed_run(compiled, *args)
    write_results("scaling", rows, {"note": "..."})
    print_table(rows, ["algo", "env", "num_envs", "steps_per_s"])
"""
from __future__ import annotations

import datetime
import json
import os
import platform
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Sequence

# JAXRL_BENCH_RESULTS redirects every benchmark's JSON (benchmarks/accelerator.sh writes a device's set apart)
RESULTS_DIR = Path(os.environ.get("JAXRL_BENCH_RESULTS") or Path(__file__).resolve().parent / "results")


def compile_timed(jitted, *args, **kwargs):
    """AOT-compile ``jitted`` (a ``jax.jit`` object) for ``args``; returns ``(compiled, seconds)``.

    ``args`` may be concrete arrays or ``jax.ShapeDtypeStruct`` trees.
    """
    t0 = time.perf_counter()
    compiled = jitted.lower(*args, **kwargs).compile()
    return compiled, time.perf_counter() - t0


def timed_run(fn: Callable, *args, **kwargs):
    """Run ``fn(*args)`` once and block on every output; returns ``(seconds, out)``.

    Pass a compiled function (from :func:`compile_timed`) so that no compilation is timed.
    Inputs are blocked on first, so pending work from earlier calls is not counted.
    """
    import jax

    jax.block_until_ready(args)
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    jax.block_until_ready(out)
    return time.perf_counter() - t0, out


def machine_info() -> dict:
    """Where the numbers came from: CPU count, load, JAX version, backend, devices, XLA_FLAGS."""
    import jax

    devices = jax.devices()
    info = {
        "timestamp": datetime.datetime.now().isoformat(timespec="seconds"),
        "hostname": platform.node(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "jax_version": jax.__version__,
        "backend": jax.default_backend(),
        "device_count": len(devices),
        "device_kind": devices[0].device_kind if devices else None,
        "XLA_FLAGS": os.environ.get("XLA_FLAGS", ""),
        "JAX_PLATFORMS": os.environ.get("JAX_PLATFORMS", ""),
    }
    try:
        info["load_average_1m"] = os.getloadavg()[0]
    except (AttributeError, OSError):
        pass
    try:
        import jaxlib

        info["jaxlib_version"] = jaxlib.__version__
    except Exception:
        pass
    return info


def write_results(name: str, rows: Sequence[dict], meta: Optional[dict] = None,
                  directory: Optional[Path] = None) -> Path:
    """Write ``{"machine": machine_info(), "meta": meta, "rows": rows}`` to ``results/NAME.json``."""
    d = Path(directory) if directory is not None else RESULTS_DIR
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"{name}.json"
    payload = {"machine": machine_info(), "meta": dict(meta or {}), "rows": list(rows)}
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=_json_default))
    os.replace(tmp, path)
    return path


def print_table(rows: Iterable[dict], columns: Sequence[str], stream=None) -> None:
    """Print ``rows`` as an aligned text table of ``columns`` (missing values print as '-')."""
    import sys

    stream = stream or sys.stdout
    rows = list(rows)
    cells = [[_cell(r.get(c)) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    print("  ".join(c.rjust(w) for c, w in zip(columns, widths)), file=stream)
    print("  ".join("-" * w for w in widths), file=stream)
    for row in cells:
        print("  ".join(v.rjust(w) for v, w in zip(row, widths)), file=stream)


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        if v != v:
            return "nan"
        if abs(v) >= 1000:
            return f"{v:,.0f}"
        return f"{v:.3g}"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return str(v)


def _json_default(o):
    try:
        import numpy as np

        if isinstance(o, (np.floating, np.integer)):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
    except ImportError:
        pass
    return str(o)
