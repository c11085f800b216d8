"""rejax 0.1.3's SAC or TD3 throughput on gymnax's Pendulum-v1, for ``continuous_throughput.py``.

Run with the Python of a separate virtualenv that has rejax 0.1.3 (it needs gymnax < 1.0, so it is
never a dependency of jaxrl)::

    python -m venv /work/peers/rejax && /work/peers/rejax/bin/pip install rejax==0.1.3 'gymnax<1.0'
    /work/peers/rejax/bin/python benchmarks/peer_rejax.py sac --hidden 64

Prints one JSON line: env steps/s of ``jit(algo.train)`` (compile excluded), compile seconds. The
configuration matches jaxrl's row: 1 env, one gradient step (batch 256) per env step, buffer 10,000,
learning from step 1,000, 10,000 steps; evaluation replaced by a no-op so only training is timed.
"""
import argparse
import json
import os
import time

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("algo", choices=["sac", "td3"])
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--steps", type=int, default=10_000)
    ap.add_argument("--repeats", type=int, default=2)
    a = ap.parse_args()
    from rejax import get_algo

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


if __name__ == "__main__":
    main()
