"""Where the time goes: compile time, acting vs learning, XLA cost and memory, traces, HLO.

:func:`profile` works for every agent through the :class:`~jaxrl.core.agent.Agent` contract and
compiles the same chunk program the driver runs (:func:`jaxrl.core.program.make_chunk`, vmapped over seeds):

* **compile seconds**: tracing+lowering and XLA compilation of ``init`` and of the update chunk.
* **acting vs learning**: *acting* is a compiled program that does only what a rollout does, for
  the same number of env steps as the timed updates: ``env.step`` driven by the agent's greedy
  policy ``Agent.act(state, obs, key)`` (every agent has one).  *learning* is the rest of ``update``: ``update time - acting time``
  (gradient steps, target computation, replay, and sampling overheads beyond the forward pass).
  *env only* (random actions, no network) is the ceiling the environment sets.
* **cost per update** (all seeds): ``flops_per_update`` counted from the jaxpr with every
  ``lax.scan`` body multiplied by its length (dot_general/conv exactly, one FLOP per element
  elsewhere).  ``xla_flops``/``xla_bytes_accessed`` come from ``compiled.cost_analysis()`` of one
  update; XLA counts each while/scan body **once**, so they are lower bounds whenever the
  update has inner loops (PPO: rollout and minibatch scans).
* **memory**: ``compiled.memory_analysis()`` of the update chunk (arguments, outputs, temporaries,
  the peak when the backend reports it) and the device's own peak where available (GPU/TPU).
* **host interactions** of the compiled update: custom-call targets and infeed/outfeed/send/recv.
  gymnax programs have none; envpool has its step custom call (and the reset ``io_callback``).
* **platform**: the JAX versions and the CPU Threefry lowering in use, with the reason
  (:func:`jaxrl._platform.report`).
* **trace**: ``jax.profiler.trace`` around the timed calls (TensorBoard profile plugin or
  https://ui.perfetto.dev: ``plugins/profile/*/perfetto_trace.json.gz``).
* **HLO**: ``dump_hlo`` writes the optimized HLO (``compiled.as_text()``) of the update and of the
  acting program, and the StableHLO before optimization.
"""
from __future__ import annotations

import math
import re
import time
from pathlib import Path
from typing import Optional


HOST_OPS = ("infeed", "outfeed", "send", "recv", "send-done", "recv-done")
CALLBACK_TARGETS = ("xla_python_cpu_callback", "xla_python_gpu_callback", "xla_ffi_python_cpu_callback",
                    "xla_ffi_python_gpu_callback", "xla_ffi_partitioned_python_cpu_callback",
                    "xla_ffi_partitioned_python_gpu_callback")


def host_interactions(hlo_text: str) -> dict:
    """Custom-call targets and host-transfer ops in an HLO module's text.

    Returns ``{"custom_calls": {target: count}, "host_ops": {op: count}, "callbacks": n}``;
    ``callbacks`` counts Python host callbacks (``io_callback``/``pure_callback``/``debug``).
    """
    targets: dict[str, int] = {}
    for t in re.findall(r'custom_call_target="([^"]+)"', hlo_text):
        targets[t] = targets.get(t, 0) + 1
    ops = {op: len(re.findall(r"\s%s\(" % re.escape(op), hlo_text)) for op in HOST_OPS}
    callbacks = sum(n for t, n in targets.items() if "callback" in t)
    return {"custom_calls": targets, "host_ops": {k: v for k, v in ops.items() if v}, "callbacks": callbacks}


# ----------------------------------------------------------------------------------- jaxpr FLOPs
def _size(aval) -> int:
    return int(math.prod(getattr(aval, "shape", ()) or ()))


def _subjaxprs(params) -> list:
    from jax.extend import core as jcore

    out = []
    for v in params.values():
        for x in (v if isinstance(v, (tuple, list)) else (v,)):
            if isinstance(x, jcore.ClosedJaxpr):
                out.append(x.jaxpr)
            elif isinstance(x, jcore.Jaxpr):
                out.append(x)
    return out


def jaxpr_flops(jaxpr) -> tuple[float, bool]:
    """Estimated FLOPs of a jaxpr, scan bodies times their length; returns ``(flops, exact_loops)``.

    ``exact_loops`` is False when a ``while_loop`` (unknown trip count) was counted once.
    """
    total, exact = 0.0, True
    for eqn in jaxpr.eqns:
        name = eqn.primitive.name
        if name == "scan":
            f, e = jaxpr_flops(eqn.params["jaxpr"].jaxpr)
            total += eqn.params["length"] * f
            exact &= e
        elif name == "while":
            for sub in _subjaxprs(eqn.params):
                f, _ = jaxpr_flops(sub)
                total += f
            exact = False
        elif name == "cond":
            costs = [jaxpr_flops(b.jaxpr) for b in eqn.params["branches"]]
            total += max(c[0] for c in costs)
            exact &= all(c[1] for c in costs)
        elif name == "dot_general":
            (lc, _), _ = eqn.params["dimension_numbers"]
            k = math.prod(eqn.invars[0].aval.shape[d] for d in lc) if lc else 1
            total += 2.0 * _size(eqn.outvars[0].aval) * k
        elif name == "conv_general_dilated":
            rhs = eqn.invars[1].aval.shape
            dn = eqn.params["dimension_numbers"]
            out_feat = rhs[dn.rhs_spec[0]] if dn is not None else rhs[0]
            total += 2.0 * _size(eqn.outvars[0].aval) * math.prod(rhs) / max(out_feat, 1)
        else:
            subs = _subjaxprs(eqn.params)
            if subs:  # pjit, custom_jvp/vjp, remat, custom_vmap, ...: count the callee once
                for sub in subs[:1]:
                    f, e = jaxpr_flops(sub)
                    total += f
                    exact &= e
            elif name.startswith("reduce_") or name in ("argmax", "argmin", "cumsum", "cumprod", "cummax"):
                total += sum(_size(v.aval) for v in eqn.invars if hasattr(v, "aval"))
            else:
                total += sum(_size(v.aval) for v in eqn.outvars)
    return total, exact


# ----------------------------------------------------------------------------------- the profile
def _timed(fn, *args, reps: int = 3):
    """Best-of-``reps`` seconds of ``fn(*args)`` (compiled), blocking on outputs."""
    import jax

    best, out = float("inf"), None
    for _ in range(reps):
        jax.block_until_ready(args)
        t0 = time.perf_counter()
        out = fn(*args)
        jax.block_until_ready(out)
        best = min(best, time.perf_counter() - t0)
    return best, out


def _build(algo, env_id, overrides, num_seeds, seed, env_options, updates):
    """The agent, its batch inputs and the (uncompiled) programs that the profile times."""
    import jax
    import jax.numpy as jnp

    from jaxrl import agents, envs, parallel
    from jaxrl.core.program import empty_accumulator, make_chunk

    module, preset = agents.get(algo)
    config = module.Config.from_dict({**preset, **(overrides or {})})
    env_id = env_id or getattr(module, "DEFAULT_ENV", "gymnax:CartPole-v1")
    env = envs.make(env_id, num_envs=getattr(config, "num_envs", 1), num_seeds=num_seeds, **(env_options or {}))
    agent = module.make_agent(config, env)
    keys = jax.random.split(jax.random.PRNGKey(seed), num_seeds)
    hp = {k: jnp.full((num_seeds,), v, jnp.float32) for k, v in config.hparams().items()}
    chunk = make_chunk(agent)  # the driver's own chunk program
    act_steps = max(1, agent.steps_per_update // env.spec.num_envs) * updates  # batched env.step calls
    programs = {
        "init": jax.jit(parallel.vmap(agent.init)),
        "update": jax.jit(parallel.vmap(lambda s, h: chunk(s, empty_accumulator(agent), h, updates, 0)[0])),
        "one_update": jax.jit(parallel.vmap(agent.update)),
        "acting": _acting_program(env, agent, act_steps, True),
        "env_only": _acting_program(env, agent, act_steps, False),
    }
    return dict(algo=algo, env_id=env_id, env=env, agent=agent, keys=keys, hp=hp, programs=programs,
                num_seeds=num_seeds, updates=updates)


def _acting_program(env, agent, act_steps: int, use_policy: bool):
    """``jit(vmap(acting))``: ``act_steps`` env steps driven by the greedy policy or by random actions."""
    import jax
    import jax.numpy as jnp

    from jaxrl import parallel

    spec = env.spec

    def random_action(key, n):
        a = spec.action_space
        if spec.discrete:
            return jax.random.randint(key, (n,), 0, a.n)
        return jax.random.uniform(key, (n,) + tuple(a.shape), minval=jnp.asarray(a.low), maxval=jnp.asarray(a.high))

    def acting(state, key):
        env_state, ts = env.reset(jax.random.fold_in(key, 1))

        def body(carry, k):
            env_state, obs, ret = carry
            k_act, k_env = jax.random.split(k)
            action = agent.act(state, obs, k_act) if use_policy else random_action(k_act, spec.num_envs)
            env_state, ts = env.step(env_state, action, k_env)
            return (env_state, ts.obs, ret + ts.reward.sum()), None

        (_, _, ret), _ = jax.lax.scan(body, (env_state, ts.obs, jnp.zeros(())), jax.random.split(key, act_steps))
        return ret  # keeps every step live; the env state is not needed after timing

    return jax.jit(parallel.vmap(acting))


def _compile(ctx) -> dict:
    """Lower and compile every program (timed), in place in ``ctx``."""
    import jax

    p, keys, hp = ctx["programs"], ctx["keys"], ctx["hp"]
    t0 = time.perf_counter()
    init_lowered = p["init"].lower(keys, hp)
    state_shape = jax.eval_shape(p["init"], keys, hp)
    upd_lowered = p["update"].lower(state_shape, hp)
    t_lower = time.perf_counter() - t0
    t1 = time.perf_counter()
    compiled = {"init": init_lowered.compile(), "update": upd_lowered.compile()}
    t_compile = time.perf_counter() - t1
    compiled["one_update"] = p["one_update"].lower(state_shape, hp).compile()
    compiled["acting"] = p["acting"].lower(state_shape, keys).compile()
    compiled["env_only"] = p["env_only"].lower(state_shape, keys).compile()
    ctx.update(compiled=compiled, state_shape=state_shape, update_lowered=upd_lowered)
    return {"lower_seconds": t_lower, "xla_compile_seconds": t_compile, "total_seconds": t_lower + t_compile}


def _measure(ctx, reps: int, trace_dir: Optional[str]):
    """Best-of-``reps`` seconds of the update chunk, the acting and the env-only programs."""
    import jax

    c, keys, hp = ctx["compiled"], ctx["keys"], ctx["hp"]
    state = c["update"](c["init"](keys, hp), hp)  # warm-up: first-call allocations, pools, caches

    def timed_all():
        t_upd, _ = _timed(c["update"], state, hp, reps=reps)
        t_act, _ = _timed(c["acting"], state, keys, reps=reps)
        t_env, _ = _timed(c["env_only"], state, keys, reps=reps)
        return t_upd, t_act, t_env

    if not trace_dir:
        return timed_all(), []
    Path(trace_dir).mkdir(parents=True, exist_ok=True)
    with jax.profiler.trace(str(trace_dir), create_perfetto_trace=True):
        with jax.profiler.TraceAnnotation("jaxrl.profile"):
            times = timed_all()
    return times, sorted(str(p) for p in Path(trace_dir).rglob("*") if p.is_file())


def _memory(compiled) -> dict:
    """``memory_analysis()`` of a compiled program, plus the device's own peak where it reports one."""
    import jax

    mem = compiled.memory_analysis()
    memory = {}
    for name in ("argument_size_in_bytes", "output_size_in_bytes", "alias_size_in_bytes", "temp_size_in_bytes",
                 "generated_code_size_in_bytes", "peak_memory_in_bytes"):
        v = getattr(mem, name, None) if mem is not None else None
        if v is not None:
            memory[name.replace("_in_bytes", "_bytes")] = int(v)
    if memory:
        est = memory.get("argument_size_bytes", 0) + memory.get("output_size_bytes", 0) \
            - memory.get("alias_size_bytes", 0) + memory.get("temp_size_bytes", 0)
        memory["peak_bytes"] = int(memory.get("peak_memory_bytes") or est)
    try:
        stats = jax.devices()[0].memory_stats() or {}
        if "peak_bytes_in_use" in stats:
            memory["device_peak_bytes_in_use"] = int(stats["peak_bytes_in_use"])
    except Exception:
        pass
    return memory


def _cost(ctx) -> dict:
    import jax

    agent = ctx["agent"]
    ca = ctx["compiled"]["one_update"].cost_analysis()
    ca = (ca[0] if isinstance(ca, (list, tuple)) and ca else ca) or {}
    flops, exact = jaxpr_flops(jax.make_jaxpr(jax.vmap(agent.update))(ctx["state_shape"], ctx["hp"]).jaxpr)
    return {"flops": flops, "flops_exact_loops": exact,
            "flops_per_env_step": flops / (agent.steps_per_update * ctx["num_seeds"]),
            "xla_flops": float(ca.get("flops", float("nan"))),
            "xla_bytes_accessed": float(ca.get("bytes accessed", float("nan"))),
            "xla_note": "XLA cost_analysis counts each loop body once: a lower bound when update has inner scans"}


def _dump_hlo(ctx, folder: str) -> list[str]:
    c = ctx["compiled"]
    d = Path(folder)
    d.mkdir(parents=True, exist_ok=True)
    files = []
    for name, text in (("update.optimized.hlo.txt", c["update"].as_text()),
                       ("update.stablehlo.mlir", ctx["update_lowered"].as_text()),
                       ("acting.optimized.hlo.txt", c["acting"].as_text()),
                       ("init.optimized.hlo.txt", c["init"].as_text())):
        (d / name).write_text(text)
        files.append(str(d / name))
    return files


def profile(algo: str, env_id: Optional[str] = None, overrides: Optional[dict] = None, num_seeds: int = 1,
            updates: int = 4, reps: int = 3, seed: int = 0, trace_dir: Optional[str] = None,
            dump_hlo: Optional[str] = None, env_options: Optional[dict] = None) -> dict:
    """Compile and time a short training of ``algo`` and return the report (see module docstring).

    ``updates`` updates per timed call (one call of the driver's chunk program), best of ``reps``
    calls. Config ``overrides`` go through the agent's validated Config (e.g. ``{"total_steps": 65536}``).
    """
    import jax

    from jaxrl import _platform
    from jaxrl.config import ConfigError
    from jaxrl.driver import cache

    if updates < 1 or reps < 1 or num_seeds < 1:
        raise ConfigError("profile", f"updates, reps and num_seeds must be >= 1; got {updates}, {reps}, {num_seeds}")
    ctx = _build(algo, env_id, overrides, num_seeds, seed, env_options, updates)
    cache.enable()
    with cache.CacheHits() as hits:
        compile_times = _compile(ctx)
    compile_times["cache"] = hits.describe()
    (t_upd, t_act, t_env), trace_files = _measure(ctx, reps, trace_dir)
    agent, spec = ctx["agent"], ctx["env"].spec
    total_steps = agent.steps_per_update * updates * num_seeds
    t_learn = max(t_upd - t_act, 0.0)
    return {
        "algo": algo, "env": ctx["env_id"], "num_seeds": num_seeds, "num_envs": spec.num_envs,
        "backend": jax.default_backend(), "device": str(jax.devices()[0].device_kind),
        "steps_per_update": agent.steps_per_update, "updates_per_call": updates, "reps": reps,
        "compile": compile_times,
        "time": {
            "update_seconds": t_upd / updates, "acting_seconds": t_act / updates,
            "learning_seconds": t_learn / updates, "env_only_seconds": t_env / updates,
            "acting_fraction": min(t_act / t_upd, 1.0) if t_upd > 0 else float("nan"),
        },
        "steps_per_second": {
            "training": total_steps / t_upd, "acting": total_steps / t_act, "env_only": total_steps / t_env,
            "learning": total_steps / t_learn if t_learn > 0 else float("inf"),
        },
        "acting_policy": "act",
        "cost_per_update": _cost(ctx),
        "memory": _memory(ctx["compiled"]["update"]),
        "host_interactions": host_interactions(ctx["compiled"]["update"].as_text()),
        "trace_dir": str(trace_dir) if trace_dir else None, "trace_files": trace_files,
        "hlo_files": _dump_hlo(ctx, dump_hlo) if dump_hlo else [],
        "platform": _platform.report(),
    }
