"""Devices and hosts: shard the batch of training runs with JAX's own SPMD machinery.

The driver (:mod:`jaxrl.driver`) trains a flat batch of ``B = sweep points x seeds`` independent
runs as one program, ``jit(vmap(update))``.  Members never talk to each other, so sharding the
batch axis over a 1-D :class:`jax.sharding.Mesh` (axis name ``"batch"``) is exact data
parallelism with no communication: every leaf of the state, the keys, the hyperparameters and
the metrics carry ``NamedSharding(mesh, P("batch"))`` on their leading axis, and XLA's SPMD
partitioner gives each device ``B / n`` members.  The algorithm code does not change.

    placement = plan("all", batch=8)                      # 8 seeds over every local device
    keys, hp = placement.put((keys, hp))
    fn = jax.jit(jax.vmap(update), **placement.jit_kwargs(2))

Rules (each mistake is a one-line :class:`~jaxrl.config.ConfigError`):

* ``--devices N`` needs ``B % N == 0`` (no silent padding: a padded member would be trained,
  timed and checkpointed for nothing).  ``--devices all`` uses the largest device count that
  divides ``B``, and says so when that is fewer than all devices.
* envpool: the pool is one C++ object on the host, stepped by an XLA custom call that the SPMD
  partitioner cannot split.  envpool runs therefore use one device (``all`` falls back to 1;
  an explicit ``N > 1`` is an error).  Its seeds still run as one program (one pool of
  ``num_envs x num_seeds`` envs, see :mod:`jaxrl.envs.envpool_env`).
* One device (the default on a single CPU or GPU) is exactly the unsharded program: no
  shardings are attached at all.

Multi-host (several machines, or several processes on one): :func:`initialize_distributed` joins the
job (``jaxrl train`` calls it when ``JAXRL_COORDINATOR`` or ``JAXRL_DISTRIBUTED=1`` is set), the mesh
then spans every device of every process, metrics are gathered with :func:`to_host`, only process 0
writes (:func:`is_main_process`), and decisions that must agree everywhere go through
:func:`any_process` and :func:`agree`, since every process must run the same sequence of programs
and collectives. The launch, what is tested (``tests/test_multihost.py``: a 2-process job on
localhost equals a 4-device single-process run) and what is not: ``docs/scaling.md``.
"""
from __future__ import annotations

import dataclasses
import os
import sys
from typing import Any, Optional, Sequence, Union

from jaxrl.config import ConfigError

AXIS = "batch"


def parse_devices(value: Union[str, int, None]) -> Union[str, int]:
    """``"all"`` or a positive int; anything else is a :class:`ConfigError`."""
    if value is None:
        return "all"
    if isinstance(value, str):
        v = value.strip().lower()
        if v == "all":
            return "all"
        try:
            value = int(v)
        except ValueError:
            raise ConfigError("devices", f"expected 'all' or a positive integer; got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError("devices", f"expected 'all' or a positive integer; got {value!r}")
    return value


@dataclasses.dataclass(frozen=True)
class Placement:
    """Where the batch axis lives.  ``mesh is None`` means one device, nothing sharded."""

    devices: tuple
    mesh: Any = None
    note: Optional[str] = None  # why fewer devices than requested are used, if so

    @property
    def num_devices(self) -> int:
        return len(self.devices)

    @property
    def sharding(self):
        """``NamedSharding(mesh, P("batch"))``, or None on one device."""
        if self.mesh is None:
            return None
        from jax.sharding import NamedSharding, PartitionSpec

        return NamedSharding(self.mesh, PartitionSpec(AXIS))

    def jit_kwargs(self, num_args: int, replicated: int = 0) -> dict:
        """``in_shardings``/``out_shardings`` for ``jax.jit`` of a function of ``num_args`` batched
        pytrees followed by ``replicated`` unbatched arguments (the same on every device), whose every
        output leaf is batched; ``{}`` on one device."""
        s = self.sharding
        if s is None:
            return {}
        from jax.sharding import NamedSharding, PartitionSpec

        rep = NamedSharding(self.mesh, PartitionSpec())
        return {"in_shardings": (s,) * num_args + (rep,) * replicated, "out_shardings": s}

    def put(self, tree):
        """Place a pytree of host arrays (leading axis = batch) with the batch sharding.

        Works across processes: each process passes the same full arrays and keeps only the
        shards of its own devices.  A no-op on one device.
        """
        s = self.sharding
        if s is None:
            return tree
        import jax
        import numpy as np

        def place(x):
            x = np.asarray(x)
            return jax.make_array_from_callback(x.shape, s, lambda idx: x[idx])

        return jax.tree_util.tree_map(place, tree)


def plan(devices: Union[str, int, None], batch: int, shardable: bool = True,
         available: Optional[Sequence] = None, stream=None) -> Placement:
    """Choose the devices for a batch of ``batch`` runs.

    Args:
      devices: ``"all"``, an int, or None (= ``"all"``).
      batch: the flat batch size ``B`` (sweep points x seeds).
      shardable: False for an env backend that is one host object (envpool, see the module docstring):
        it runs on one device (``jaxrl.envs.backend(name).shardable``).
      available: the devices to choose from (default ``jax.devices()``: all processes).
      stream: where a fallback note is printed (default stderr; pass False for silence).
    """
    import jax

    want = parse_devices(devices)
    avail = list(jax.devices() if available is None else available)
    note = None
    if not shardable:
        if want != "all" and want > 1:
            raise ConfigError("devices", f"this env runs on one device (envpool: the pool is one host object "
                                         f"stepped by an XLA custom call that cannot be partitioned); use "
                                         f"--devices 1 or all, got {want}")
        n = 1  # silently: on CPU every core is a device (jaxrl._platform), so this is the common case
    elif want == "all":
        n = max(d for d in range(1, len(avail) + 1) if batch % d == 0)
        if n < len(avail) and batch > 1:  # a single run has nothing to shard: no note
            note = (f"devices: using {n} of {len(avail)} devices: the batch of {batch} runs (sweep points x seeds) "
                    f"does not divide over more; use a multiple of {len(avail)} seeds to use all")
    else:
        if want > len(avail):
            raise ConfigError("devices", f"asked for {want} devices but only {len(avail)} are visible "
                                         f"({avail[0].platform if avail else 'none'})")
        if batch % want:
            ok = [d for d in range(1, len(avail) + 1) if batch % d == 0]
            raise ConfigError("devices", f"the batch of {batch} runs (sweep points x seeds) is not divisible by "
                                         f"{want} devices; use --devices {' or '.join(map(str, ok))}, or a "
                                         f"multiple of {want} seeds")
        n = want
    chosen = tuple(avail[:n])
    if note and stream is not False:
        print(f"jaxrl: {note}", file=stream or sys.stderr)
    if n == 1:
        return Placement(chosen, None, note)
    import numpy as np
    from jax.sharding import Mesh

    return Placement(chosen, Mesh(np.array(chosen), (AXIS,)), note)


def vmap(fn, in_axes: Union[int, None, Sequence[Optional[int]]] = 0):
    """``jax.vmap(fn, in_axes)`` over leading axes (``out_axes=0``), except that a batch of one
    member calls ``fn`` unbatched and puts the size-1 axis back on every output.

    The values are the same up to float rounding (jaxrl's random streams vmap member by member,
    so the member draws the same numbers); the compiled program is not.
    XLA:CPU keeps the size-1 batch dimension through the whole program, which changes how it lays
    out the gradient's matrix products (a ``[64, 4]`` first-layer weight gradient instead of
    ``[4, 64]``, at 9-10 us instead of 2-4 us per gradient step) and adds bitcasts around
    every loop carry. PPO CartPole, 1 seed: about 182k steps/s vmapped, 196k unbatched.

    ``in_axes``: ``0`` for every argument, or one entry per positional argument (``0`` or ``None``).
    """
    import jax

    vmapped = jax.vmap(fn, in_axes=in_axes)
    if in_axes is not None and not isinstance(in_axes, int) and any(a not in (0, None) for a in in_axes):
        raise ValueError(f"parallel.vmap takes leading batch axes only (0 or None), got in_axes={in_axes}")

    def call(*args):
        axes = (in_axes,) * len(args) if in_axes is None or isinstance(in_axes, int) else tuple(in_axes)
        sizes = {leaf.shape[0] for a, ax in zip(args, axes) if ax is not None
                 for leaf in jax.tree_util.tree_leaves(a)}
        if sizes != {1}:
            return vmapped(*args)
        squeezed = [a if ax is None else jax.tree_util.tree_map(lambda x: x[0], a) for a, ax in zip(args, axes)]
        return jax.tree_util.tree_map(lambda y: jax.numpy.expand_dims(y, 0), fn(*squeezed))

    return call


def to_host(tree):
    """Fetch a pytree of (possibly sharded, possibly multi-process) arrays to numpy."""
    import jax
    import numpy as np

    def fetch(x):
        if isinstance(x, jax.Array) and not x.is_fully_addressable:
            from jax.experimental import multihost_utils

            return np.asarray(multihost_utils.process_allgather(x, tiled=True))
        return x

    # one jax.device_get for all local leaves: their copies to the host start together (the driver
    # reads a few dozen scalars per chunk; one blocking copy each cost ~20 us apiece)
    return jax.tree_util.tree_map(np.asarray, jax.device_get(jax.tree_util.tree_map(fetch, tree)))


def any_process(flag: bool) -> bool:
    """``flag`` or-ed over all processes (one tiny all-gather when there are several; else ``flag``).

    The driver decides "stop after this chunk" with it: a signal may reach the processes of a
    multi-host run at different chunk boundaries, and every process must run the same sequence of
    programs and collectives, or the next collective deadlocks.
    """
    import jax

    if jax.process_count() == 1:
        return bool(flag)
    import numpy as np
    from jax.experimental import multihost_utils

    return bool(np.asarray(multihost_utils.process_allgather(np.int32(bool(flag)))).any())


def agree(check) -> None:
    """Run ``check()`` on every process; if it raised a ``ConfigError`` on any, raise on all.

    A process whose own check passed raises a ConfigError that names the process that refused,
    so a multi-host job stops everywhere with exit status 2 instead of hanging in the next
    collective.  One process: just ``check()``.
    """
    import jax

    from jaxrl.config import ConfigError

    error = None
    try:
        check()
    except ConfigError as e:
        error = e
    if jax.process_count() == 1:
        if error is not None:
            raise error
        return
    import numpy as np
    from jax.experimental import multihost_utils

    fields = ("out", "resume")  # the fields a folder check can refuse; others are sent as 3
    code = 0 if error is None else (fields.index(error.field) + 1 if error.field in fields else 3)
    codes = np.asarray(multihost_utils.process_allgather(np.int32(code))).reshape(-1)
    if error is not None:
        raise error
    if codes.any():
        first = int(np.flatnonzero(codes)[0])
        field = fields[codes[first] - 1] if codes[first] <= len(fields) else "arguments"
        raise ConfigError(field, f"process {first} of this multi-process job refused it (see that process's "
                                 f"message); fix it there and relaunch every process")


def is_main_process() -> bool:
    """True on process 0 (the one that writes files); always True on one host."""
    import jax

    return jax.process_index() == 0


# ------------------------------------------------------------------------------------ multi-host
ENV_VARS = ("JAXRL_COORDINATOR", "JAXRL_NUM_PROCESSES", "JAXRL_PROCESS_ID", "JAXRL_LOCAL_DEVICE_IDS")


def distributed_args(environ: Optional[dict] = None) -> Optional[dict]:
    """Keyword arguments for ``jax.distributed.initialize`` from the environment, or None.

    ``JAXRL_COORDINATOR=host:port`` with ``JAXRL_NUM_PROCESSES`` and ``JAXRL_PROCESS_ID`` gives an
    explicit launch (all three required together); ``JAXRL_LOCAL_DEVICE_IDS=0,1`` optionally
    restricts the local devices.  ``JAXRL_DISTRIBUTED=1`` alone returns ``{}``: let JAX
    auto-detect the cluster (SLURM, Open MPI, Cloud TPU).  Nothing set: None (single process).
    """
    env = os.environ if environ is None else environ
    coord = env.get("JAXRL_COORDINATOR", "").strip()
    auto = env.get("JAXRL_DISTRIBUTED", "").strip().lower() in ("1", "true", "yes")
    if not coord:
        stray = [k for k in ENV_VARS[1:] if env.get(k, "").strip()]
        if stray and not auto:
            raise ConfigError("distributed", f"{', '.join(stray)} set without JAXRL_COORDINATOR=host:port")
        return {} if auto else None
    host, sep, port = coord.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ConfigError("distributed", f"JAXRL_COORDINATOR must be host:port; got {coord!r}")
    out: dict = {"coordinator_address": coord}
    for var, key in (("JAXRL_NUM_PROCESSES", "num_processes"), ("JAXRL_PROCESS_ID", "process_id")):
        raw = env.get(var, "").strip()
        if not raw:
            raise ConfigError("distributed", f"JAXRL_COORDINATOR is set, so {var} is required too")
        try:
            out[key] = int(raw)
        except ValueError:
            raise ConfigError("distributed", f"{var} must be an integer; got {raw!r}") from None
    if out["num_processes"] < 1:
        raise ConfigError("distributed", f"JAXRL_NUM_PROCESSES must be >= 1; got {out['num_processes']}")
    if not 0 <= out["process_id"] < out["num_processes"]:
        raise ConfigError("distributed", f"JAXRL_PROCESS_ID must be in [0, {out['num_processes']}); "
                                         f"got {out['process_id']}")
    ids = env.get("JAXRL_LOCAL_DEVICE_IDS", "").strip()
    if ids:
        try:
            out["local_device_ids"] = [int(i) for i in ids.split(",")]
        except ValueError:
            raise ConfigError("distributed", f"JAXRL_LOCAL_DEVICE_IDS must be comma-separated integers; "
                                             f"got {ids!r}") from None
    return out


_initialized = False


def initialize_distributed(environ: Optional[dict] = None, **overrides) -> bool:
    """Call ``jax.distributed.initialize`` once if the environment (or ``overrides``) asks for it.

    Must run before any JAX computation.  Returns True when this process joined a multi-process
    run.  See :func:`distributed_args` for the variables.
    """
    global _initialized
    kwargs = distributed_args(environ)
    if overrides:
        kwargs = dict(kwargs or {}, **overrides)
    if kwargs is None or _initialized:
        return _initialized
    import jax

    jax.distributed.initialize(**kwargs)
    _initialized = True
    return True
