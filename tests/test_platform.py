"""jaxrl's import-time CPU defaults: random streams stay bit-identical, flags respect the user, the
Threefry lowering is chosen by JAX version and never hangs a compilation."""
import os
import subprocess
import sys
import warnings

import pytest

from jaxrl import _platform

SNIPPET = ("import jax, numpy as np; k = jax.random.PRNGKey(3); "
           "print(np.asarray(jax.random.split(k, 3)).tolist(), "
           "np.asarray(jax.jit(lambda k: jax.random.uniform(k, (4,)))(k)).tolist(), "
           "np.asarray(jax.jit(jax.vmap(lambda k: jax.random.categorical(k, jax.numpy.zeros(5))))"
           "(jax.random.split(k, 4))).tolist())")


def _run(code, timeout=120, **env):
    e = dict(os.environ, JAX_PLATFORMS="cpu", **env)
    out = subprocess.run([sys.executable, "-c", code], env=e, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, out.stderr[-1500:]
    return out.stdout.strip()


def test_unrolled_threefry_gives_identical_random_streams():
    plain = _run(SNIPPET)
    with_jaxrl = _run("import jaxrl; " + SNIPPET)
    assert plain == with_jaxrl


def test_unrolled_threefry_has_no_loop_in_hlo():
    code = ("import jaxrl, jax; print(jax.jit(lambda k: jax.random.split(k, 4)).lower("
            "jax.random.PRNGKey(0)).compile().as_text().count(' while('))")
    assert _platform.threefry_choice()["lowering"] == "unrolled"  # this test's JAX is in UNROLLED_JAX
    assert _run(code) == "0"
    assert int(_run(code, JAXRL_FAST_THREEFRY="0")) >= 1  # JAX's own CPU lowering loops


# A split followed by a draw, in one program: with JAX's own unrolled rule this was one fusion of 40
# rounds that jaxlib 0.11/0.12's LLVM never finished compiling (killed after 10 minutes); it takes
# under 2 s with jaxrl's lowering on jax 0.10.2, 0.11.2 and 0.12.0.1, on a busy machine.
SPLIT_THEN_DRAW = ("import jaxrl, jax, time; t = time.time(); jax.jit(jax.vmap(lambda k: jax.random.uniform(k, ())))"
                   ".lower(jax.random.split(jax.random.PRNGKey(0), 4)).compile(); "
                   "f = jax.jit(lambda k: jax.vmap(lambda kk: jax.random.uniform(kk, ()))(jax.random.split(k, 4))); "
                   "f.lower(jax.random.PRNGKey(0)).compile(); print(round(time.time() - t, 2))")


def test_a_split_followed_by_a_draw_compiles_in_seconds():
    assert float(_run(SPLIT_THEN_DRAW, timeout=90)) < 60


def test_the_lowering_is_chosen_by_version_and_setting():
    v = {"jax": "0.12.0.1", "jaxlib": "0.12.0.1"}
    assert _platform.choose_threefry("1", v)[0] == "unrolled"
    assert _platform.choose_threefry("1", {"jax": "0.10.2", "jaxlib": "0.10.2"})[0] == "unrolled"
    assert _platform.choose_threefry("0", v) == ("jax", "JAXRL_FAST_THREEFRY=0")
    newer = {"jax": "0.13.0.dev20261201", "jaxlib": "0.13.0"}
    lowering, reason = _platform.choose_threefry("1", newer)
    assert lowering == "jax" and "0.13.0" in reason and "not measured" in reason and "force" in reason
    assert _platform.choose_threefry("1", {"jax": "0.12.0.1", "jaxlib": "0.13.0"})[0] == "jax"  # both must be in range
    assert _platform.choose_threefry("1", {"jax": "0.10.1", "jaxlib": "0.10.1"})[0] == "jax"
    assert _platform.choose_threefry("force", newer)[0] == "unrolled"
    assert _platform.choose_threefry("yes", v)[0] == "jax"
    assert _platform.version_tuple("0.12.0.1") == (0, 12, 0, 1)
    assert _platform.version_tuple("0.13.0.dev20261201") == (0, 13, 0)


def test_missing_jax_internals_fall_back_to_jax_with_a_warning(monkeypatch):
    def gone():
        raise AttributeError("module 'jax._src.random.threefry2x32' has no attribute 'threefry2x32_p'")

    monkeypatch.setattr(_platform, "_register_unrolled", gone)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        choice = _platform._configure_threefry("1")
    assert choice["lowering"] == "jax" and "threefry2x32_p" in choice["reason"]
    assert any("JAX's own Threefry lowering" in str(x.message) for x in w)


@pytest.mark.parametrize("setting, lowering", [("1", "unrolled"), ("0", "jax")])
def test_the_choice_is_reported_by_the_process(setting, lowering):
    code = "import jaxrl._platform as p; r = p.report(); print(r['threefry']['lowering'], '|', r['threefry']['reason'])"
    out = _run(code, JAXRL_FAST_THREEFRY=setting)
    assert out.split(" | ")[0] == lowering and out.split(" | ")[1]


def test_eigen_flag_added_unless_user_sets_it():
    code = "import jaxrl, os; print(os.environ['XLA_FLAGS'])"
    assert "--xla_cpu_multi_thread_eigen=false" in _run(code, XLA_FLAGS="")
    assert "--xla_cpu_multi_thread_eigen=true" in _run(code, XLA_FLAGS="--xla_cpu_multi_thread_eigen=true")
    assert "eigen=false" not in _run(code, XLA_FLAGS="--xla_cpu_multi_thread_eigen=true")
    assert "eigen" not in _run(code, XLA_FLAGS="", JAXRL_XLA_DEFAULTS="0")


def test_scheduler_flag_added_unless_user_sets_it():
    code = "import jaxrl, os; print(os.environ['XLA_FLAGS'])"
    flag = "--xla_cpu_enable_concurrency_optimized_scheduler"
    assert f"{flag}=false" in _run(code, XLA_FLAGS="")
    assert _run(code, XLA_FLAGS=f"{flag}=true").count(flag) == 1
    assert "scheduler" not in _run(code, XLA_FLAGS="", JAXRL_XLA_DEFAULTS="0")


def test_every_core_is_a_cpu_device_unless_the_user_says_otherwise():
    code = "import jaxrl, jax; print(jax.device_count())"
    assert _run(code, XLA_FLAGS="") == str(os.cpu_count())
    assert _run(code, XLA_FLAGS="--xla_force_host_platform_device_count=3") == "3"
    assert _run(code, XLA_FLAGS="", JAXRL_XLA_DEFAULTS="0") == "1"
