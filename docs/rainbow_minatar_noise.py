"""Does a noisy DQN-family run's noise change its actions?  ``python docs/rainbow_minatar_noise.py RUN_DIR``.

Loads the run's latest checkpoint (``jaxrl eval``'s loader), takes up to 4000 states from each seed's
replay buffer and prints, per seed: the share of (state, noise draw) pairs whose noisy argmax differs
from the greedy (mean-weight) argmax over 32 noise draws, the mean gap between the best and the
second-best Q, the standard deviation of Q under noise, and the mean |sigma| and |mu| of each noisy layer.
"""
import sys

import jax
import jax.numpy as jnp

import jaxrl.envs
from jaxrl.agents.dqn import torso_of
from jaxrl.commands.eval import evaluate_run
from jaxrl.networks import QNetwork


def main(run_dir: str) -> None:
    spec, meta, returns, agent, state = evaluate_run(run_dir, 10, state_too=True)
    cfg = spec.config
    print(run_dir, "update", meta.get("update"), "greedy return per seed", returns.mean(-1).round(1))
    env = jaxrl.envs.make(spec.env_id, num_envs=cfg.num_envs)
    A = env.spec.action_space.n
    K = cfg.num_atoms if cfg.distributional else 1
    net = QNetwork(A, (cfg.hidden,) * cfg.layers, torso_of(cfg, env.spec), cfg.dueling, K, cfg.noisy,
                   len(env.spec.obs_shape), cfg.noisy_sigma0, cfg.noisy_hidden)
    atoms = jnp.linspace(cfg.v_min, cfg.v_max, K)
    q_of = (lambda o: (jax.nn.softmax(o, -1) * atoms).sum(-1)) if cfg.distributional else (lambda o: o)
    for s in range(returns.shape[0]):
        params = jax.tree_util.tree_map(lambda x: x[s], state.learner.params)
        obs = state.buffer.data["obs"][s]
        obs = obs.reshape((-1,) + obs.shape[2:])[:4000]  # [rows * envs, ...]
        q0 = q_of(net.apply(params, obs))
        qn = jax.vmap(lambda k: q_of(net.apply(params, obs, rngs={"noise": k})))(
            jax.random.split(jax.random.key(s), 32))  # [32, N, A]
        changed = float((qn.argmax(-1) != q0.argmax(-1)[None]).mean())
        top2 = jnp.sort(q0, -1)[:, -2:]
        leaves = {jax.tree_util.keystr(p): float(jnp.abs(x).mean())
                  for p, x in jax.tree_util.tree_leaves_with_path(params)}
        noisy = {k: round(v, 4) for k, v in leaves.items() if "sigma" in k or "mu_kernel" in k}
        print(f"seed {s}: action changed by noise {changed:.3f}; Q gap best - 2nd {float((top2[:, 1] - top2[:, 0]).mean()):.4f}; "
              f"Q sd under noise {float(qn.std(0).mean()):.4f}; mean Q {float(q0.mean()):.3f}; {noisy}")


if __name__ == "__main__":
    main(sys.argv[1])
