"""JAX's persistent compilation cache, on by default: a repeated configuration or a resume skips the compile.

The cache folder is ``$XDG_CACHE_HOME/jaxrl/xla`` (``~/.cache/jaxrl/xla``). ``JAXRL_COMPILE_CACHE=DIR``
moves it, ``JAXRL_COMPILE_CACHE=off`` (or ``--compile-cache off``) turns it off; a cache folder the user
gave JAX itself (``JAX_COMPILATION_CACHE_DIR``) is left alone. :class:`CacheHits` counts the programs
the cache served, so the driver can say so next to the compile time.

Programs with host callbacks (envpool's reset) are never cached by JAX; they compile every time.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

ENV_VAR = "JAXRL_COMPILE_CACHE"
OFF = ("off", "0", "false", "no", "none")
MIN_COMPILE_SECONDS = 0.2  # programs that compile faster are not worth a cache entry

_counts = {"hits": 0, "requests": 0}
_listening = False
_decided = False  # the first call of enable() decides; later calls without a choice keep it


def default_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "jaxrl" / "xla"


def enable(where: Optional[str] = None) -> Optional[str]:
    """Turn the persistent cache on (``where``: a folder, ``"off"``, or None for the default / the
    environment variable). Returns the folder in use, or None when off. Call before compiling."""
    import jax

    global _decided
    _listen()
    if where is None and _decided:
        return jax.config.jax_compilation_cache_dir
    _decided = True
    choice = where if where is not None else os.environ.get(ENV_VAR)
    if choice is not None and choice.strip().lower() in OFF:
        jax.config.update("jax_enable_compilation_cache", False)
        _reset()
        return None
    if choice is None and jax.config.jax_compilation_cache_dir:  # the user configured JAX directly
        return jax.config.jax_compilation_cache_dir
    folder = Path(choice).expanduser() if choice else default_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None  # an unwritable cache is no reason to stop a run: compile as usual
    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_enable_compilation_cache", True)
    _reset()  # JAX may have opened its cache already (importing gymnax runs JAX): reopen it here
    if jax.config.jax_persistent_cache_min_compile_time_secs > MIN_COMPILE_SECONDS:
        jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_SECONDS)
    return str(folder)


def _reset() -> None:
    from jax.experimental.compilation_cache import compilation_cache

    compilation_cache.reset_cache()


def _listen() -> None:
    global _listening
    if _listening:
        return
    import jax

    def on_event(event: str, **kwargs) -> None:
        if event == "/jax/compilation_cache/cache_hits":
            _counts["hits"] += 1
        elif event == "/jax/compilation_cache/compile_requests_use_cache":
            _counts["requests"] += 1

    jax.monitoring.register_event_listener(on_event)
    _listening = True


class CacheHits:
    """``with CacheHits() as c: ...compile...``; then ``c.hits`` programs came from the cache out of
    ``c.requests`` that used it."""

    def __enter__(self):
        _listen()
        self._start = dict(_counts)
        return self

    def __exit__(self, *exc):
        self.hits = _counts["hits"] - self._start["hits"]
        self.requests = _counts["requests"] - self._start["requests"]
        return False

    def describe(self) -> str:
        if not self.requests:
            return ""
        if self.hits == self.requests:
            return "served from the compilation cache"
        return f"{self.hits} of {self.requests} programs from the compilation cache" if self.hits else ""
