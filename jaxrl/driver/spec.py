"""What defines a run, validated before anything is compiled or written.

:class:`RunSpec` holds the algorithm, env, config and run options; :func:`validate` checks every
field with a one-line :class:`~jaxrl.config.ConfigError` (exit status 2 at the CLI);
:func:`from_run_dir` rebuilds the spec of an existing results folder (``--resume``, ``jaxrl eval``).

Seeds and sweep values form one flat batch axis ``B = num_sweep_points * num_seeds``; every sweep
point uses the same ``num_seeds`` keys (common random numbers across settings).
"""
from __future__ import annotations

import dataclasses
import itertools
import json
import math
from pathlib import Path
from typing import Any, Optional

from jaxrl.config import ConfigError

RUN_INTS = {"num_seeds": 1, "seed": 0, "log_every": 1, "eval_every": 0, "eval_episodes": 1, "checkpoint_every": 0}


@dataclasses.dataclass
class RunSpec:
    """Everything that defines a run."""

    algo: str
    env_id: str
    config: Any  # the agent's Config instance
    num_seeds: int = 1
    seed: int = 0
    sweep: dict = dataclasses.field(default_factory=dict)  # traced field -> list of values
    out: Optional[str] = None
    log_every: Optional[int] = None  # env steps per seed between logging points; None: 1% of the run
    env_options: dict = dataclasses.field(default_factory=dict)
    devices: Any = "all"  # "all" or N: shard the batch axis over devices (jaxrl.parallel)
    eval_every: Optional[int] = None  # env steps per seed between evaluations; None: 10% of the run; 0: off
    eval_episodes: int = 10  # greedy episodes per seed per evaluation
    checkpoint_every: Optional[int] = None  # env steps per seed; None: 10% of the run; 0: only at the end/stop
    tensorboard: bool = False
    memory_budget_gb: Optional[float] = None  # None: what the device can hold
    resume: bool = False  # continue ``out`` from its last checkpoint
    max_minutes: Optional[float] = None  # stop cleanly after this much training time (this session)
    agent_source: Optional[str] = None  # a user's algorithm file or module (jaxrl.agents.register)
    init_from: Optional[str] = None  # a results folder whose last checkpoint initialises the leaves under init_keys
    init_keys: str = ".params"  # comma-separated key paths of the state (checkpoint names) taken from init_from

    def sweep_points(self) -> list[dict]:
        if not self.sweep:
            return [{}]
        names = list(self.sweep)
        return [dict(zip(names, vals)) for vals in itertools.product(*(self.sweep[n] for n in names))]

    @property
    def batch(self) -> int:
        return len(self.sweep_points()) * self.num_seeds

    def rows_meta(self) -> list[dict]:
        """One dict per batch member: its seed and sweep values (the order of the batch axis)."""
        return [dict(seed=s, **p) for p in self.sweep_points() for s in range(self.num_seeds)]

    def to_json(self, **extra) -> dict:
        d = {"algo": self.algo, "env": self.env_id, "num_seeds": self.num_seeds, "seed": self.seed,
             "sweep": self.sweep, "log_every": self.log_every, "env_options": self.env_options,
             "eval_every": self.eval_every, "eval_episodes": self.eval_episodes,
             "checkpoint_every": self.checkpoint_every, "tensorboard": self.tensorboard,
             "memory_budget_gb": self.memory_budget_gb, "agent_source": self.agent_source,
             "config": self.config.to_dict()}
        if self.init_from:
            d.update(init_from=self.init_from, init_keys=self.init_keys)
        d.update(extra)
        return d


def _check_int(name: str, value, low: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise ConfigError(name, f"must be an integer >= {low}; got {value!r}")


def validate(spec: RunSpec) -> None:
    """Cross-checks of the run options; raises one-line ConfigErrors naming the field."""
    from jaxrl.envs import parse_id
    from jaxrl.parallel import parse_devices

    for name, low in RUN_INTS.items():
        value = getattr(spec, name)
        if value is None and name in ("log_every", "eval_every", "checkpoint_every"):
            continue
        _check_int(name, value, low)
    parse_id(spec.env_id)
    parse_devices(spec.devices)
    traced = spec.config.traced_fields()
    for name, values in spec.sweep.items():
        if name not in spec.config.field_specs():
            raise ConfigError("sweep", f"unknown field {name!r}")
        if name not in traced:
            raise ConfigError("sweep", f"{name} is a static field (it changes shapes or program structure), so it "
                                       f"cannot be a batch axis; sweepable fields: {', '.join(traced)}")
        if len(set(values)) != len(values):
            raise ConfigError("sweep", f"{name} lists a value twice ({values}); give each value once")
        for v in values:  # every swept value must itself be valid
            spec.config.replace(**{name: v})
    if spec.memory_budget_gb is not None and not (isinstance(spec.memory_budget_gb, (int, float))
                                                  and spec.memory_budget_gb > 0
                                                  and math.isfinite(spec.memory_budget_gb)):
        raise ConfigError("memory_budget", f"must be a positive number of GiB; got {spec.memory_budget_gb!r}")
    if spec.init_from is not None and not spec.resume:  # a resumed run continues from its own checkpoints
        _check_init_from(spec)
    if spec.max_minutes is not None and not (isinstance(spec.max_minutes, (int, float)) and spec.max_minutes > 0
                                             and math.isfinite(spec.max_minutes)):
        raise ConfigError("max_minutes", f"must be a positive number of minutes; got {spec.max_minutes!r}")


def init_prefixes(spec: RunSpec) -> list[str]:
    return [p.strip() for p in spec.init_keys.split(",") if p.strip()]


def _check_init_from(spec: RunSpec) -> None:
    from jaxrl import checkpoint

    p = Path(spec.init_from)
    if not p.is_dir():
        raise ConfigError("init_from", f"{spec.init_from} does not exist or is not a folder")
    if not checkpoint.list_checkpoints(p):
        raise ConfigError("init_from", f"{spec.init_from} has no checkpoint ({checkpoint.PATTERN})")
    if not init_prefixes(spec) or not all(k.startswith((".", "[")) for k in init_prefixes(spec)):
        raise ConfigError("init_keys", f"expected key paths like .params (comma-separated); got {spec.init_keys!r}")


def check_out_dir(out: str) -> Path:
    """A results folder that can be created and is empty: else a ConfigError (exit 2), before compiling."""
    p = Path(out)
    if p.exists() and (not p.is_dir() or any(p.iterdir())):
        raise ConfigError("out", f"{out} already exists and is not empty; pick a new --out "
                                 f"(or --resume {out} to continue it)")
    for parent in p.absolute().parents:  # the first existing ancestor must be a writable folder
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError("out", f"{out} cannot be created: {parent} is a file, not a folder")
            import os

            if not os.access(parent, os.W_OK | os.X_OK):
                raise ConfigError("out", f"{out} cannot be created: no permission to write in {parent}")
            break
    return p


def from_run_dir(run_dir: str, what: str = "resume") -> RunSpec:
    """The RunSpec of an existing results folder; one-line errors naming ``what``."""
    from jaxrl import agents

    p = Path(run_dir)
    if not p.is_dir():
        raise ConfigError(what, f"{run_dir} does not exist or is not a folder")
    cfg_path = p / "config.json"
    if not cfg_path.is_file():
        raise ConfigError(what, f"{run_dir} is not a jaxrl results folder (no config.json)")
    try:
        c = json.loads(cfg_path.read_text())
        if not isinstance(c, dict):
            raise ValueError("not an object")
        if c.get("agent_source"):
            agents.register_source(c["agent_source"], name=c["algo"])
        module, _ = agents.get(c["algo"])
        config = module.Config.from_dict(c["config"])
        spec = RunSpec(algo=c["algo"], env_id=c["env"], config=config, num_seeds=int(c["num_seeds"]),
                       seed=int(c["seed"]), sweep=dict(c.get("sweep") or {}), out=str(p),
                       log_every=c.get("log_every"), env_options=dict(c.get("env_options") or {}),
                       eval_every=c.get("eval_every"), eval_episodes=int(c.get("eval_episodes", 10)),
                       checkpoint_every=c.get("checkpoint_every"), tensorboard=bool(c.get("tensorboard", False)),
                       memory_budget_gb=c.get("memory_budget_gb"), resume=True,
                       agent_source=c.get("agent_source"), init_from=c.get("init_from"),
                       init_keys=c.get("init_keys") or ".params")
    except ConfigError as e:
        raise ConfigError(what, f"{cfg_path} holds an invalid config ({e})")
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as e:
        raise ConfigError(what, f"{cfg_path} is damaged ({type(e).__name__}: {e})")
    return spec


def check_resumable(spec: RunSpec) -> None:
    """A folder that ``--resume`` can continue: a config, a checkpoint, and not finished."""
    from jaxrl import checkpoint

    out = Path(spec.out) if spec.out else None
    if out is None or not (out / "config.json").is_file():
        raise ConfigError("resume", f"{spec.out} is not a jaxrl results folder (no config.json)")
    summary = out / "summary.json"
    if summary.exists():
        try:
            finished = json.loads(summary.read_text()).get("finished", True)
        except (ValueError, OSError, AttributeError):
            finished = True
        if finished:
            raise ConfigError("resume", f"{spec.out} already finished (summary.json says so); nothing to resume")
    if not checkpoint.list_checkpoints(spec.out):
        raise ConfigError("resume", f"{spec.out} has no checkpoint ({checkpoint.CKPT_DIR}/) to resume from")
