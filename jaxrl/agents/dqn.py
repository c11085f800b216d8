"""Deep Q-Networks and the extensions that make Rainbow, each a switch that composes with the rest.

* DQN (Mnih et al. 2015): replay, target network, epsilon-greedy; Huber or MSE TD loss.
* ``double`` (van Hasselt et al. 2016, arXiv:1509.06461): the online net picks the next action.
* ``n_step`` (Sutton 1988; Hessel et al. 2018): n-step returns assembled at sample time.
* ``distributional`` (C51, Bellemare et al. 2017, arXiv:1707.06887): ``num_atoms`` on
  ``[v_min, v_max]``, projected target, cross-entropy loss.
* ``dueling`` (Wang et al. 2016): ``V + A - mean A``.
* ``noisy`` (Fortunato et al. 2018): factorized Gaussian noisy head; epsilon is then 0
  (``noisy_epsilon`` keeps it; ``noisy_per_env`` draws the acting noise per env).
* ``prioritized`` (Schaul et al. 2016): proportional replay, ``alpha``, ``beta`` annealed to 1.
* ``rainbow`` preset (Hessel et al. 2018, arXiv:1710.02298): everything on.

Everything but the Q-learning itself (acting, replay, n-step windows, learning starts, train-every,
target updates, priorities) is the off-policy core, :mod:`jaxrl.core.offpolicy`, whose docstring
gives the units. With ``num_envs=10, train_every=1`` the agent trains once per 10 env steps
(PureJaxRL's ``TRAINING_INTERVAL=10``).

A variant of the DQN family is two functions (``docs/variants.md``): ``target(q, params, target_params,
batch, keys, hp) -> y`` computed without gradient, and ``loss(q, params, batch, y, keys, hp) ->
(loss, (priority, q_pred))``; pass them to :func:`make_agent` (and a head of ``num_atoms`` outputs per
action with its ``q_of``, for distributional variants).
"""
from __future__ import annotations

import dataclasses
from typing import Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import optax

from jaxrl import losses, returns, rng
from jaxrl.config import ConfigError, field
from jaxrl.core import offpolicy
from jaxrl.core.optim import gradient_step, optimizer, schedule
from jaxrl.envs.core import require_discrete
from jaxrl.networks import QNetwork


@dataclasses.dataclass(frozen=True)
class Config(offpolicy.Config):
    num_envs: int = field(10, low=1, help="parallel environments per seed")
    total_steps: int = field(500_000, low=1, help="env steps per seed")
    buffer_size: int = field(10_000, low=1, help="replay capacity in transitions (split evenly over envs)")
    batch_size: int = field(128, low=1, help="transitions per gradient step")
    learning_starts: int = field(10_000, low=0, help="env steps before the first gradient step")
    target_update_every: int = field(500, low=1, help="env steps between target updates")
    tau: float = field(1.0, traced=True, low=0.0, high=1.0, low_open=True,
                       help="target update rate: 1 = hard copy, < 1 = Polyak averaging")
    lr: float = field(2.5e-4, traced=True, low=0.0, low_open=True, help="Adam learning rate")
    anneal_lr: bool = field(True, help="anneal the learning rate linearly to 0 over the run")
    adam_eps: float = field(1e-8, traced=True, low=0.0, low_open=True, help="Adam epsilon")
    max_grad_norm: float = field(10.0, traced=True, low=0.0, help="global grad-norm clip (0: none)")
    eps_start: float = field(1.0, traced=True, low=0.0, high=1.0, help="initial exploration epsilon")
    eps_end: float = field(0.05, traced=True, low=0.0, high=1.0, help="final exploration epsilon")
    eps_decay_steps: int = field(250_000, low=1, help="env steps of the linear epsilon decay")
    double: bool = field(True, help="double Q-learning targets (on by default: plain DQN is unstable on CartPole)")
    dueling: bool = field(False, help="dueling value/advantage head")
    distributional: bool = field(False, help="C51 distributional head and loss")
    num_atoms: int = field(51, low=2, help="C51 atoms")
    v_min: float = field(0.0, help="C51 support minimum")
    v_max: float = field(100.0, help="C51 support maximum")
    noisy: bool = field(False, help="noisy-net head for exploration (epsilon is 0 unless --noisy-epsilon)")
    noisy_sigma0: float = field(0.5, low=0.0, low_open=True,
                                help="noisy layers' initial sigma times sqrt(fan_in) (Fortunato et al. 0.5; dqn_zoo 0.1)")
    noisy_hidden: bool = field(False, help="with noisy: the last hidden MLP layer is noisy too")
    noisy_epsilon: bool = field(False, help="with noisy: keep the epsilon-greedy schedule as well (else epsilon is 0)")
    noisy_per_env: bool = field(False, help="with noisy: an independent noise draw per env when acting "
                                            "(else one draw shared by the num_envs envs)")
    loss: str = field("mse", choices=("mse", "huber"), help="TD loss (C51 uses cross-entropy)")
    hidden: int = field(64, low=1, help="units per hidden layer (MLP torso)")
    layers: int = field(2, low=1, high=8, help="hidden layers (MLP torso)")
    torso: str = field("auto", choices=("auto", "mlp", "nature_cnn", "conv1d"),
                       help="auto = Nature CNN for 84x84 frames, else MLP; conv1d: two width-5 1-D convolutions "
                            "over [channels, length] observations (trading layout=conv), then the hidden layers")

    def check(self):
        super().check()
        for name in ("noisy_epsilon", "noisy_per_env", "noisy_hidden"):
            if getattr(self, name) and not self.noisy:
                flag = name.replace("_", "-")
                raise ConfigError(name, f"only applies with noisy nets: add --noisy, or turn it off with --no-{flag}")
        if self.distributional and self.v_max <= self.v_min:
            raise ConfigError("v_max", f"must exceed v_min ({self.v_min}); got {self.v_max}")


# Every switch on, n = 3 (Hessel et al. 2018).  The C51 support stays at the config's [v_min, v_max]
# (CartPole scale); on Atari with clipped rewards pass --v-min -10 --v-max 10 as in the paper.
# Exploration is the noise alone, as in the paper; on MinAtar that stalls (docs/rainbow_minatar.md), and
# experiments/rainbow_breakout_minatar.json adds --noisy-epsilon, DQN's lr and the support [-10, 10].
PRESETS = {
    "rainbow": dict(double=True, dueling=True, distributional=True, noisy=True, prioritized=True, n_step=3),
}


class Q(NamedTuple):
    """A Q network as the losses see it.

    apply(params, obs [B, ...], key | None) -> head output: Q ``[B, A]`` or per-action atoms ``[B, A, K]``
    (noise drawn from ``key`` for noisy nets; ``None``: their mean weights).
    q_of(out) -> Q values ``[B, A]``.   atoms: the C51 support ``[K]`` (or None).
    """

    apply: Callable
    q_of: Callable
    atoms: Optional[jax.Array]
    config: Config


class Learner(NamedTuple):
    params: dict  # flax parameters of the Q network
    opt_state: optax.OptState
    count: jax.Array  # gradient steps taken (the learning-rate schedule's step)


# ----------------------------------------------------------------------------- targets and losses
def td_target(q: Q, params, target_params, batch: offpolicy.Batch, keys, hp):
    """Q-learning target ``[B]`` (double-Q: the online net picks a'), or C51's projected distribution ``[B, K]``.

    Computed without gradient: double-Q's online forward at s' costs no backward pass.
    """
    out_next = q.apply(target_params, batch.next_obs, keys[1])
    selector = q.q_of(q.apply(params, batch.next_obs, keys[0])) if q.config.double else q.q_of(out_next)
    if q.config.distributional:
        return returns.categorical_q_target(q.atoms, batch.reward, batch.discount, out_next, selector)
    return returns.double_q_target(batch.reward, batch.discount, out_next, selector)


def td_loss(q: Q, params, batch: offpolicy.Batch, y, keys, hp):
    """Weighted TD loss (or C51 cross-entropy) of the taken actions; aux = (priority [B], q_pred [B])."""
    chosen = returns.select_action_values(q.apply(params, batch.obs, keys[0]), batch.action)
    if q.config.distributional:
        per = losses.categorical_cross_entropy(chosen, y)
        q_pred = (jax.nn.softmax(chosen, -1) * q.atoms).sum(-1)
        return (per * batch.weight).mean(), (per, q_pred)
    td = y - chosen
    return losses.td_loss(td, batch.weight, q.config.loss), (jnp.abs(td), chosen)


def epsilon(config: Config, steps, hp):
    """Exploration epsilon after ``steps`` env steps: linear from ``eps_start`` to ``eps_end``.

    0 with noisy nets, unless ``noisy_epsilon`` keeps the schedule beside the noise.
    """
    if config.noisy and not config.noisy_epsilon:
        return jnp.zeros((), jnp.float32)
    return optax.linear_schedule(hp["eps_start"], hp["eps_end"], config.eps_decay_steps)(steps)


def acting_values(q: Q, params, obs, key, per_env: bool = False):
    """Q ``[E, A]`` of ``obs [E, ...]`` for acting: one noise draw from ``key`` shared by the E rows,
    or (``per_env``) an independent draw per row, as if each env had its own noisy net."""
    if per_env:
        keys = jax.random.split(key, obs.shape[0])
        return jax.vmap(lambda o, k: q.q_of(q.apply(params, o[None], k))[0])(obs, keys)
    return q.q_of(q.apply(params, obs, key))


def torso_of(config: Config, spec) -> str:
    """The torso ``config.torso`` names (``auto``: Nature CNN for frames of at least 36 pixels, else MLP)."""
    if config.torso == "auto":
        return "nature_cnn" if len(spec.obs_shape) == 3 and spec.obs_shape[0] >= 36 else "mlp"
    if config.torso == "conv1d" and (len(spec.obs_shape) != 2 or spec.obs_shape[1] < 9):
        raise ConfigError("torso", f"conv1d needs [channels, length >= 9] observations; {spec.env_id} gives "
                                   f"{spec.obs_shape} (trading: --env-option layout=conv)")
    if config.torso == "nature_cnn" and (len(spec.obs_shape) != 3 or min(spec.obs_shape[:2]) < 36):
        raise ConfigError("torso", f"nature_cnn needs image observations of at least 36x36xC; {spec.env_id} "
                                   f"gives {spec.obs_shape}; use --torso mlp")
    return config.torso


# ----------------------------------------------------------------------------- the learner
def make_agent(config: Config, env, *, target: Callable = td_target, loss: Callable = td_loss,
               num_atoms: Optional[int] = None, q_of: Optional[Callable] = None):
    """DQN (with its switches) on the off-policy core. ``target``/``loss``/``num_atoms``/``q_of`` make variants."""
    config.validate()
    spec = env.spec
    require_discrete(spec, "c51/rainbow (distributional)" if config.distributional else "dqn")
    A, E = spec.action_space.n, config.num_envs
    K = num_atoms or (config.num_atoms if config.distributional else 1)
    net = QNetwork(A, (config.hidden,) * config.layers, torso_of(config, spec), config.dueling, K,
                   config.noisy, len(spec.obs_shape), config.noisy_sigma0, config.noisy_hidden)
    atoms = jnp.linspace(config.v_min, config.v_max, K) if config.distributional else None
    if q_of is None:
        q_of = (lambda out: (jax.nn.softmax(out, -1) * atoms).sum(-1)) if config.distributional else (lambda out: out)

    def apply(params, obs, key=None):
        rngs = {"noise": key} if (config.noisy and key is not None) else None
        return net.apply(params, obs, rngs=rngs)

    q = Q(apply, q_of, atoms, config)
    grad_total = max(1, config.num_updates * config.gradient_steps)

    def tx(hp):
        return optimizer(hp["lr"], total_steps=grad_total, anneal=config.anneal_lr,
                         max_grad_norm=hp["max_grad_norm"], eps=hp["adam_eps"])

    def init(key, hp):
        params = net.init({"params": key, "noise": key}, jnp.zeros(spec.obs_shape, spec.obs_dtype))
        return Learner(params, tx(hp).init(params), jnp.zeros((), jnp.int32))

    def act(ls: Learner, obs, explore, bits, steps, hp):
        noise_key = rng.key_from_words(bits[2 * E:]) if config.noisy else None
        values = acting_values(q, ls.params, obs, noise_key, config.noisy_per_env)  # check(): implies noisy
        eps = epsilon(config, steps, hp)
        explore_now = rng.uniform(bits[:E]) < eps
        action = jnp.where(explore_now, (bits[E:2 * E] % A).astype(jnp.int32), jnp.argmax(values, -1))
        return action.astype(jnp.int32), explore, {"q_mean": values.mean(), "epsilon": eps}

    def learn(ls: Learner, target_params, batch, bits, hp):
        keys = (rng.key_from_words(bits), rng.key_from_words(bits[2:])) if config.noisy else (None, None)
        y = jax.lax.stop_gradient(target(q, ls.params, target_params, batch, keys, hp))
        t = tx(hp)
        params, opt_state, value, (priority, q_pred), grad_norm = gradient_step(
            lambda p: loss(q, p, batch, y, keys, hp), t, ls.params, ls.opt_state)
        metrics = {"loss": value, "q_pred": q_pred.mean(), "grad_norm": grad_norm,
                   "lr": schedule(hp["lr"], grad_total, config.anneal_lr)(ls.count)}
        return Learner(params, opt_state, ls.count + 1), metrics, jax.lax.stop_gradient(priority)

    def greedy(ls: Learner, obs):
        """argmax of Q (noisy layers at their mean weights)."""
        return jnp.argmax(q_of(apply(ls.params, obs)), -1).astype(jnp.int32)

    learner = offpolicy.Learner(init, act, learn, greedy, target_of=lambda ls: ls.params,
                                act_words=2 * E + (offpolicy.KEY_WORDS if config.noisy else 0),
                                learn_words=2 * offpolicy.KEY_WORDS if config.noisy else 0)
    return offpolicy.make_agent(config, env, learner)
