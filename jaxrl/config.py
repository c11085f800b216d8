"""Frozen, validated configuration dataclasses with an explicit static/traced split.

Every agent has one config class, a frozen ``dataclasses.dataclass`` that subclasses
:class:`Config`.  Each field is declared with :func:`field`, which records

* whether the value is **traced** (a hyperparameter that may be swept: it enters the
  compiled program as an array, so ``jax.vmap`` over it gives a one-program sweep), or
  **static** (a shape or a switch: changing it means recompiling);
* bounds and choices, checked by :meth:`Config.validate` before anything compiles.

Validation failures raise :class:`ConfigError`, whose message is one line naming the
field and the fix.  The CLI turns it into exit status 2.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Mapping, Sequence


class ConfigError(ValueError):
    """A configuration mistake. ``str(err)`` is a one-line message naming the field."""

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(f"{field}: {message}")


def field(
    default: Any,
    *,
    traced: bool = False,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    choices: Sequence[Any] | None = None,
    help: str = "",
):
    """Declare a config field.

    Args:
      default: default value; its Python type is the field's type.
      traced: True for a hyperparameter that enters the program as a traced array and
        can therefore be swept with ``jax.vmap``.
      low, high: inclusive bounds (``low`` is exclusive when ``low_open``).
      choices: allowed values.
      help: one-line description, shown by ``jaxrl train ALGO --help``.
    """
    meta = dict(traced=traced, low=low, high=high, low_open=low_open, choices=choices, help=help)
    return dataclasses.field(default=default, metadata=meta)


def _type_name(t) -> str:
    return {int: "an integer", float: "a number", bool: "true/false", str: "a string"}.get(t, str(t))


@dataclasses.dataclass(frozen=True)
class Config:
    """Base class. Subclasses are ``@dataclasses.dataclass(frozen=True)`` and override :meth:`check`."""

    # ---- introspection -------------------------------------------------------------------
    @classmethod
    def field_specs(cls) -> dict[str, dataclasses.Field]:
        return {f.name: f for f in dataclasses.fields(cls)}

    @classmethod
    def traced_fields(cls) -> tuple[str, ...]:
        return tuple(n for n, f in cls.field_specs().items() if f.metadata.get("traced"))

    @classmethod
    def field_type(cls, name: str) -> type:
        return type(cls.field_specs()[name].default)

    # ---- construction --------------------------------------------------------------------
    @classmethod
    def from_dict(cls, values: Mapping[str, Any]):
        """Build and validate a config; unknown keys are a :class:`ConfigError`."""
        specs = cls.field_specs()
        for k in values:
            if k not in specs:
                import difflib

                close = difflib.get_close_matches(k, list(specs), n=3)
                hint = f" (did you mean {', '.join(close)}?)" if close else ""
                raise ConfigError(k, f"unknown field for {cls.__name__}{hint}")
        coerced = {k: coerce(cls.field_type(k), v, k) for k, v in values.items()}
        cfg = cls(**coerced)
        cfg.validate()
        return cfg

    def replace(self, **kw):
        cfg = dataclasses.replace(self, **kw)
        cfg.validate()
        return cfg

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    # ---- validation ----------------------------------------------------------------------
    def validate(self) -> None:
        """Check every field against its declaration, then the cross-field rules of :meth:`check`."""
        for name, f in self.field_specs().items():
            v = getattr(self, name)
            t = type(f.default)
            m = f.metadata
            if t is float and isinstance(v, int) and not isinstance(v, bool):
                v = float(v)
                object.__setattr__(self, name, v)
            if not isinstance(v, t) or (t is not bool and isinstance(v, bool)):
                raise ConfigError(name, f"expected {_type_name(t)}, got {v!r}")
            if t is float and not math.isfinite(v):
                raise ConfigError(name, f"must be finite, got {v!r}")
            if m.get("choices") is not None and v not in m["choices"]:
                raise ConfigError(name, f"must be one of {', '.join(map(str, m['choices']))}; got {v!r}")
            lo, hi = m.get("low"), m.get("high")
            if lo is not None and (v <= lo if m.get("low_open") else v < lo):
                op = ">" if m.get("low_open") else ">="
                raise ConfigError(name, f"must be {op} {lo}; got {v!r}")
            if hi is not None and v > hi:
                raise ConfigError(name, f"must be <= {hi}; got {v!r}")
        self.check()

    def check(self) -> None:
        """Cross-field rules. Override; raise :class:`ConfigError` naming the fields."""

    # ---- traced hyperparameters ----------------------------------------------------------
    def hparams(self) -> dict[str, Any]:
        """The traced fields as a dict of float32 scalars: the ``hp`` argument of ``train``."""
        import jax.numpy as jnp

        return {n: jnp.asarray(getattr(self, n), jnp.float32) for n in self.traced_fields()}


def coerce(t: type, value: Any, name: str):
    """Turn a CLI/JSON value into type ``t`` or raise a one-line :class:`ConfigError`."""
    if isinstance(value, t) and not (t is not bool and isinstance(value, bool)):
        return value
    if t is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        s = value.strip()
        try:
            if t is bool:
                if s.lower() in ("1", "true", "yes", "on"):
                    return True
                if s.lower() in ("0", "false", "no", "off"):
                    return False
                raise ValueError
            if t is int:
                f = float(s)
                if not f.is_integer():
                    raise ValueError
                return int(f)
            if t is float:
                return float(s)
            if t is str:
                return s
        except (ValueError, OverflowError):
            pass
    raise ConfigError(name, f"expected {_type_name(t)}, got {value!r}")
