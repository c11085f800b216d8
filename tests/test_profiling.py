"""The profiling toolkit, and the backend rule: the training program lowers for the default backend
with no host round-trips (gymnax), or only envpool's documented ones."""
import json

import jax
import jax.numpy as jnp

from jaxrl import agents, envs, profiling
from jaxrl.cli import main

TINY = ["--num-envs", "2", "--num-steps", "8", "--num-minibatches", "2", "--num-epochs", "1", "--total-steps", "64"]


def _compiled_chunk_text(env_id):
    from jaxrl.core.program import empty_accumulator, make_chunk

    module, _ = agents.get("ppo")
    cfg = module.Config(num_envs=2, num_steps=8, num_minibatches=2, num_epochs=1, total_steps=64)
    env = envs.make(env_id, num_envs=2, num_seeds=2)
    agent = module.make_agent(cfg, env)
    keys = jax.random.split(jax.random.PRNGKey(0), 2)
    hp = {k: jnp.full((2,), v, jnp.float32) for k, v in cfg.hparams().items()}
    init = jax.jit(jax.vmap(agent.init))
    chunk = jax.jit(jax.vmap(make_chunk(agent), in_axes=(0, 0, 0, None, None)), donate_argnums=0)
    state = jax.eval_shape(init, keys, hp)
    acc = jax.eval_shape(jax.vmap(lambda k: empty_accumulator(agent)), keys)
    return (init.lower(keys, hp).compile().as_text(),
            chunk.lower(state, acc, hp, jnp.int32(2), jnp.int32(0)).compile().as_text())


def test_gymnax_training_program_has_no_host_round_trips():
    """The driver's programs (init and the update chunk) compile for ``jax.default_backend()`` with
    no custom calls, callbacks, infeed/outfeed or send/recv: metrics leave only as chunk outputs."""
    for text in _compiled_chunk_text("gymnax:CartPole-v1"):
        hi = profiling.host_interactions(text)
        assert hi == {"custom_calls": {}, "host_ops": {}, "callbacks": 0}, hi


def test_envpool_program_has_only_its_documented_host_calls():
    """envpool: the update steps the pool through envpool's XLA custom call only; init adds the one
    ``io_callback`` that resets the pool."""
    init_text, chunk_text = _compiled_chunk_text("envpool:CartPole-v1")
    init_hi, chunk_hi = profiling.host_interactions(init_text), profiling.host_interactions(chunk_text)
    assert chunk_hi["callbacks"] == 0 and chunk_hi["host_ops"] == {}
    assert chunk_hi["custom_calls"] and all("callback" not in t for t in chunk_hi["custom_calls"])
    assert init_hi["callbacks"] == 1 and init_hi["host_ops"] == {}


def test_host_interactions_parser():
    text = ('%a = f32[] custom-call(), custom_call_target="xla_ffi_python_cpu_callback"\n'
            '%b = (f32[], token[]) infeed(token[] %t)\n  %c = f32[] custom-call(), custom_call_target="foo"')
    assert profiling.host_interactions(text) == {
        "custom_calls": {"xla_ffi_python_cpu_callback": 1, "foo": 1}, "host_ops": {"infeed": 1}, "callbacks": 1}


def test_jaxpr_flops_multiplies_scan_bodies():
    x = jnp.ones((8, 16))
    w = jnp.ones((16, 4))
    one, exact = profiling.jaxpr_flops(jax.make_jaxpr(lambda x: x @ w)(x).jaxpr)
    assert one == 2 * 8 * 16 * 4 and exact
    ten, _ = profiling.jaxpr_flops(jax.make_jaxpr(
        lambda x: jax.lax.scan(lambda c, _: (c, c @ w), x, None, length=10)[1])(x).jaxpr)
    assert ten == 10 * one


def test_profile_command_reports_and_writes_trace_and_hlo(tmp_path, capsys):
    trace, hlo, js = tmp_path / "trace", tmp_path / "hlo", tmp_path / "report.json"
    rc = main(["profile", "ppo", "--env", "gymnax:CartPole-v1", *TINY, "--updates", "2", "--reps", "1",
               "--trace-dir", str(trace), "--dump-hlo", str(hlo), "--json", str(js)])
    assert rc == 0
    out = capsys.readouterr().out
    for label in ("compile", "acting", "learning", "env only", "FLOPs/update", "XLA cost", "memory", "host calls",
                  "CPU Threefry lowering: "):
        assert label in out
    r = json.loads(js.read_text())
    assert r["platform"]["jax"] == jax.__version__ and r["platform"]["threefry"]["lowering"] in ("unrolled", "jax")
    assert r["compile"]["total_seconds"] > 0
    s = r["steps_per_second"]
    assert s["training"] > 0 and s["acting"] > 0 and s["env_only"] > 0
    assert 0 < r["time"]["acting_fraction"] <= 1
    assert r["acting_policy"] == "act"
    c = r["cost_per_update"]
    assert c["flops"] > c["xla_flops"] > 0 and c["xla_bytes_accessed"] > 0  # XLA counts loop bodies once
    assert r["memory"]["peak_bytes"] > 0
    assert r["host_interactions"]["callbacks"] == 0
    assert any(p.endswith(".xplane.pb") for p in r["trace_files"])
    assert any(p.endswith("perfetto_trace.json.gz") for p in r["trace_files"])
    assert (hlo / "update.optimized.hlo.txt").read_text().startswith("HloModule")


def test_profile_bad_input_is_one_line(capsys):
    assert main(["profile", "ppo", "--num-envs", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("jaxrl: error: num_envs") and err.count("\n") == 1
    assert main(["profile"]) == 2
