"""Experiment files of ``jaxrl train --experiment FILE``: a JSON object with ``algo``, ``env``, ``num_seeds``,
``config`` (the algorithm's fields), ``env_options``, ``devices`` and run settings; flags override it."""
from __future__ import annotations

import json
from pathlib import Path

from jaxrl.config import ConfigError

# run settings an experiment file may hold beside algo/env/config (the flags of the same names override them)
EXPERIMENT_RUN_INTS = ("seed", "log_every", "eval_every", "eval_episodes", "checkpoint_every")
EXPERIMENT_KEYS = {"algo", "env", "num_seeds", "config", "env_options", "devices", "reference", "target_return",
                   "max_minutes", *EXPERIMENT_RUN_INTS}


def read_experiment(argv: list[str]) -> dict:
    """The JSON object of ``--experiment FILE`` in ``argv`` (``{}`` without one), its keys and types checked."""
    from jaxrl.cli import UsageError

    if "--experiment" not in argv:
        return {}
    i = argv.index("--experiment")
    if i + 1 >= len(argv):
        raise UsageError("--experiment needs a JSON file")
    path = Path(argv[i + 1])
    try:
        experiment = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError("experiment", f"{path} does not exist")
    except OSError as e:  # a folder, no permission, ...
        raise ConfigError("experiment", f"cannot read {str(path)!r} ({e.strerror or e})")
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ConfigError("experiment", f"{path} is not valid JSON ({e.msg if hasattr(e, 'msg') else e})")
    if not isinstance(experiment, dict):
        raise ConfigError("experiment", f"{path} must hold a JSON object")
    for key, kind in (("config", dict), ("env_options", dict), ("algo", str), ("env", str), ("num_seeds", int),
                      *((k, int) for k in EXPERIMENT_RUN_INTS), ("max_minutes", (int, float))):
        if key in experiment and (not isinstance(experiment[key], kind) or isinstance(experiment[key], bool)):
            what = kind.__name__ if isinstance(kind, type) else "number"
            raise ConfigError("experiment", f"{path}: {key!r} must be a JSON {what}")
    unknown = sorted(set(experiment) - EXPERIMENT_KEYS)
    if unknown:
        raise ConfigError("experiment", f"{path}: unknown key {unknown[0]!r}; an experiment file holds "
                                        f"{', '.join(sorted(EXPERIMENT_KEYS))} (algorithm settings go under 'config')")
    return experiment
