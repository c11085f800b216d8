"""rejax 0.1.3's SAC or TD3 throughput on gymnax's Pendulum-v1 (for ``continuous_throughput.py``), or its PQN
on CartPole-v1 (for ``pqn_vs_rejax.py``).

Run with the Python of a separate virtualenv that has rejax 0.1.3 (it needs gymnax < 1.0, so it is
never a dependency of jaxrl)::

    python -m venv /work/peers/rejax && /work/peers/rejax/bin/pip install rejax==0.1.3 'gymnax<1.0'
    /work/peers/rejax/bin/python benchmarks/peer_rejax.py sac --hidden 64

Prints one JSON line: env steps/s of ``jit(algo.train)`` (compile excluded), compile seconds. The
configuration matches jaxrl's row: 1 env, one gradient step (batch 256) per env step, buffer 10,000,
learning from step 1,000, 10,000 steps; evaluation replaced by a no-op so only training is timed.

``pqn`` (``--seeds S --steps N``): rejax's PQN on CartPole-v1 with 32 envs x 64 steps, 16 minibatches x 4
epochs, 64-64 LayerNorm Q-network, Adam (lr 1e-3, clip 10), ``jit(vmap(train))`` over ``S`` seeds, one
evaluation at the end replaced by a no-op. With ``--serve`` it compiles, prints one JSON line, then runs
the compiled program once per line read from stdin and prints its wall and CPU seconds (so that a driver can
interleave it with jaxrl's runs without recompiling).
"""
import argparse
import json
import os
import sys
import time

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("algo", choices=["sac", "td3", "pqn"])
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--steps", type=int, default=10_000)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--seeds", type=int, default=1, help="pqn: vmapped seeds")
    ap.add_argument("--serve", action="store_true", help="pqn: run once per stdin line, print seconds")
    a = ap.parse_args()
    from rejax import get_algo

    if a.algo == "pqn":
        return pqn(get_algo("pqn"), a)

    cls = get_algo(a.algo)
    config = dict(env="Pendulum-v1", num_envs=1, batch_size=256, buffer_size=10_000, fill_buffer=1_000,
                  total_timesteps=a.steps, eval_freq=a.steps, skip_initial_evaluation=True, num_epochs=1)
    if a.algo == "sac":  # rejax 0.1.3's TD3 fixes 64-64 networks and rejects hidden_layer_sizes
        config["hidden_layer_sizes"] = (a.hidden, a.hidden)
    elif a.hidden != 64:
        raise SystemExit("rejax 0.1.3's TD3 has 64-64 networks only")
    algo = cls.create(**config)
    algo = algo.replace(eval_callback=lambda algo, ts, rng: jnp.zeros(()))
    train = jax.jit(cls.train)
    key = jax.random.PRNGKey(0)
    t0 = time.perf_counter()
    compiled = train.lower(algo, key).compile()
    compile_s = time.perf_counter() - t0
    best = float("inf")
    for r in range(a.repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(compiled(algo, jax.random.PRNGKey(r)))
        best = min(best, time.perf_counter() - t0)
    print(json.dumps({"peer": "rejax 0.1.3", "algo": a.algo, "hidden": a.hidden, "steps": a.steps,
                      "steps_per_s": a.steps / best, "compile_s": compile_s, "jax": jax.__version__}))


def pqn(cls, a):
    config = dict(env="CartPole-v1", num_envs=32, num_steps=64, num_minibatches=16, num_epochs=4,
                  learning_rate=1e-3, max_grad_norm=10.0, total_timesteps=a.steps, eval_freq=a.steps,
                  skip_initial_evaluation=True)
    algo = cls.create(**config).replace(eval_callback=lambda algo, ts, rng: jnp.zeros(()))
    iters = -(-a.steps // (32 * 64))  # rejax runs ceil(eval_freq / batch) iterations per evaluation
    keys = jax.random.split(jax.random.PRNGKey(0), a.seeds)
    t0 = time.perf_counter()
    compiled = jax.jit(jax.vmap(cls.train, in_axes=(None, 0))).lower(algo, keys).compile()
    info = {"peer": "rejax 0.1.3", "algo": "pqn", "seeds": a.seeds, "env_steps": iters * 32 * 64 * a.seeds,
            "compile_s": time.perf_counter() - t0, "jax": jax.__version__}
    if a.serve:
        jax.block_until_ready(compiled(algo, keys))  # warm-up
        print(json.dumps(info), flush=True)
        for _ in sys.stdin:
            t0, c0 = time.perf_counter(), time.process_time()
            jax.block_until_ready(compiled(algo, keys))
            print(json.dumps({"seconds": time.perf_counter() - t0, "cpu_seconds": time.process_time() - c0}), flush=True)
        return
    best = float("inf")
    for r in range(a.repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(compiled(algo, keys))
        best = min(best, time.perf_counter() - t0)
    print(json.dumps(dict(info, steps_per_s=info["env_steps"] / best)))


if __name__ == "__main__":
    main()
