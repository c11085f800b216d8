"""jaxrl's import-time CPU defaults: random streams stay bit-identical, flags respect the user."""
import os
import subprocess
import sys

SNIPPET = ("import jax, numpy as np; k = jax.random.PRNGKey(3); "
           "print(np.asarray(jax.random.split(k, 3)).tolist(), "
           "np.asarray(jax.jit(lambda k: jax.random.uniform(k, (4,)))(k)).tolist(), "
           "np.asarray(jax.jit(jax.vmap(lambda k: jax.random.categorical(k, jax.numpy.zeros(5))))"
           "(jax.random.split(k, 4))).tolist())")


def _run(code, **env):
    e = dict(os.environ, JAX_PLATFORMS="cpu", **env)
    out = subprocess.run([sys.executable, "-c", code], env=e, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-1500:]
    return out.stdout.strip()


def test_unrolled_threefry_gives_identical_random_streams():
    plain = _run(SNIPPET)
    with_jaxrl = _run("import jaxrl; " + SNIPPET)
    assert plain == with_jaxrl


def test_unrolled_threefry_has_no_loop_in_hlo():
    code = ("import jaxrl, jax; print(jax.jit(lambda k: jax.random.split(k, 4)).lower("
            "jax.random.PRNGKey(0)).compile().as_text().count(' while('))")
    assert _run(code) == "0"
    assert int(_run(code, JAXRL_FAST_THREEFRY="0")) >= 1  # JAX's own CPU lowering loops


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
