"""I2A: imagination-augmented agents (Weber et al. 2017, arXiv:1707.06203), after Lapan's *Deep RL Hands-On* ch. 17.

``jaxrl train i2a`` runs three stages, each one compiled program (:mod:`jaxrl.agents._i2a_stages`):
an A2C baseline, transitions collected with its policy, and an environment model trained on them
(saved in ``RUN/env_model/``, quality in ``summary.json`` under ``env_model``); then the I2A agent
on the on-policy core. ``--env-model RUN`` reuses a trained model; ``--env-model random`` uses an
untrained one (the ablation).

Agent: for every observation, one imagined rollout per first action of ``rollout_steps`` steps
through the frozen model (then the rollout policy's greedy actions), all branches in one vmap
(:func:`jaxrl.networks.imagination.imagine`); a rollout encoder (conv per step, GRU over the steps
in reverse); a model-free conv path; both into policy and value heads. One ``update`` is A2C's (a
rollout of ``num_steps`` x ``num_envs``, n-step returns, one RMSprop step) on

    policy_gradient_loss + vf_coef * 0.5 (V - target)^2 - ent_coef * H[pi] + distill_coef * CE(pi, pi_rollout)

where the last term distils the agent's policy (held fixed) into the small rollout policy.
``imagination=false`` drops the imagination path: the same network and loss, model-free (the A2C
baseline at equal architecture).

Observations: MinAtar's binary planes (the env model predicts each plane's logits, a Bernoulli loss)
or Atari's uint8 frame stacks from envpool, at least 36x36 with sides divisible by 4 (84x84x4 for
``envpool:Breakout-v5``): there the model predicts the change of the newest frame with an MSE loss,
as in Lapan's chapter, imagined frames drop the oldest frame and append the predicted one, and the
convolutions are strided (:class:`jaxrl.networks.env_model.PixelEnvModel`). The pixel path is meant
for a GPU: on 2 CPU cores it runs at about 20 env steps/s.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxrl import losses
from jaxrl.agents import _i2a_stages as stages
from jaxrl.config import Config, ConfigError, field
from jaxrl.core import onpolicy
from jaxrl.core.agent import Agent, explained_variance
from jaxrl.core.optim import gradient_step, optimizer
from jaxrl.networks import env_model as em
from jaxrl.networks.distributions import categorical_entropy, head_for
from jaxrl.networks.imagination import I2ANet, RolloutPolicy, imagine

DEFAULT_ENV = "gymnax:Breakout-MinAtar"


@dataclasses.dataclass(frozen=True)
class Config(Config):
    num_envs: int = field(16, low=1, help="parallel environments per seed")
    num_steps: int = field(5, low=1, help="rollout length per env per update (n of the n-step return)")
    total_steps: int = field(500_000, low=1, help="env steps per seed (the I2A stage)")
    lr: float = field(7e-4, traced=True, low=0.0, low_open=True, help="learning rate (RMSprop)")
    gamma: float = field(0.99, traced=True, low=0.0, high=1.0, help="discount")
    ent_coef: float = field(0.01, traced=True, low=0.0, help="entropy bonus coefficient")
    vf_coef: float = field(0.5, traced=True, low=0.0, help="value loss coefficient")
    max_grad_norm: float = field(0.5, traced=True, low=0.0, low_open=True, help="global grad-norm clip")
    distill_coef: float = field(1.0, traced=True, low=0.0, help="weight of the rollout policy's distillation loss")
    rollout_steps: int = field(3, low=1, high=20, help="imagined steps per rollout (the chapter's 3)")
    imagination: bool = field(True, help="use imagined rollouts (false: the model-free path alone)")
    hidden: int = field(256, low=1, help="units of the layer before the heads")
    channels: int = field(16, low=1, help="conv channels of the model-free path and the step encoder")
    encoder_hidden: int = field(64, low=1, help="GRU units of the rollout encoder")
    rollout_hidden: int = field(64, low=1, help="hidden units of the rollout policy")
    env_model: str = field("", help="env model: RUN (an i2a results folder, or its env_model/), 'random' "
                                    "(untrained: the ablation), or '' (jaxrl train trains one first)")
    baseline_steps: int = field(1_000_000, low=1, help="stage 1: A2C env steps before collecting transitions")
    model_transitions: int = field(100_000, low=2, help="stage 1: transitions collected for the env model")
    model_updates: int = field(10_000, low=1, help="stage 2: Adam steps of the env model")
    model_batch: int = field(128, low=1, help="stage 2: env-model minibatch size")
    model_lr: float = field(1e-3, low=0.0, low_open=True, help="stage 2: env-model learning rate")
    model_channels: int = field(32, low=1, help="env-model conv channels")

    def check(self):
        if self.total_steps < self.num_envs * self.num_steps:
            raise ConfigError("total_steps", f"{self.total_steps} is less than one rollout (num_envs * num_steps = "
                                             f"{self.num_envs * self.num_steps}); raise total_steps")
        if self.env_model not in ("", "random") and not (stages.model_folder(self.env_model) / stages.PARAMS).exists():
            raise ConfigError("env_model", f"{self.env_model} holds no trained env model ({stages.FOLDER}/"
                                           f"{stages.PARAMS}); give an i2a results folder, 'random' or ''")


class State(NamedTuple):
    params: Any  # {"net": I2A network, "rollout": rollout policy}
    model: Any  # the frozen environment model
    opt_state: Any
    env_state: Any
    obs: Any
    key: jax.Array
    update: jax.Array


def distillation_loss(teacher_logits, student_logits):
    """Cross-entropy ``-sum_a pi(a) log pi_rollout(a)``, averaged over ``[..., A]`` rows, with the teacher
    (the agent's policy) held fixed: its gradient moves only the student. Returns ``(loss, KL)``."""
    p = jax.nn.softmax(jax.lax.stop_gradient(teacher_logits))
    ce = -(p * jax.nn.log_softmax(student_logits)).sum(-1).mean()
    return ce, ce - categorical_entropy(jax.lax.stop_gradient(teacher_logits)).mean()


def check_env(spec) -> em.FrameKind:
    """I2A's envs: discrete actions and images, binary planes (MinAtar) or uint8 frame stacks of at least 36x36
    with sides divisible by the pixel model's stride (envpool Atari's 84x84); else a ConfigError naming ``env``.
    Returns the kind of frames."""
    if not spec.discrete or len(spec.obs_shape) != 3:
        raise ConfigError("env", f"I2A needs image observations [H, W, C] and discrete actions; {spec.env_id} "
                                 f"has {spec.obs_shape} and {spec.action_space}")
    kind = em.frame_kind(spec.obs_shape, spec.obs_dtype)
    h, w = spec.obs_shape[:2]
    stride = em.PixelEnvModel.stride
    if kind is em.PIXELS and (min(h, w) < 36 or h % stride or w % stride):
        raise ConfigError("env", f"I2A's pixel model needs uint8 frames of at least 36x36 with sides divisible by "
                                 f"{stride}; {spec.env_id} gives {spec.obs_shape} (Atari's are 84x84)")
    return kind


def prepare(spec, log=None):
    """The driver's hook before the agent: train (or find) the env model; returns ``(spec, summary extras)``."""
    from jaxrl import envs

    check_env(envs.make(spec.env_id, num_envs=1, **spec.env_options).spec)  # before any stage runs
    cfg = spec.config
    if cfg.env_model == "random":
        return spec, {}
    if cfg.env_model:
        return spec, {"env_model": stages.saved_metrics(cfg.env_model)}
    if spec.out:
        folder = Path(spec.out) / stages.FOLDER
    else:
        import tempfile

        folder = Path(tempfile.mkdtemp(prefix="jaxrl-i2a-")) / stages.FOLDER
    metrics = stages.pretrain(cfg, spec.env_id, spec.env_options, spec.seed, folder, log)
    spec = dataclasses.replace(spec, config=dataclasses.replace(cfg, env_model=str(folder)))
    return spec, {"env_model": metrics}


def _model_params(config: Config, model, obs_shape):
    if config.env_model == "":
        raise ConfigError("env_model", "no env model: run jaxrl train i2a (it trains one first), or give "
                                       "--env-model RUN or random")
    if config.env_model == "random":
        return model.init(jax.random.PRNGKey(0), jnp.zeros((1,) + obs_shape), jnp.zeros((1,), jnp.int32))
    return stages.load(config.env_model, model, obs_shape)[0]


def make_agent(config: Config, env) -> Agent:
    config.validate()
    spec = env.spec
    kind = check_env(spec)
    pixels = kind is em.PIXELS
    head = head_for(spec.action_space)
    A, obs_shape = spec.action_space.n, tuple(spec.obs_shape)
    model = stages.model_for(config, A, kind)
    model_params = _model_params(config, model, obs_shape)
    net = I2ANet(A, config.hidden, config.channels, config.encoder_hidden, config.imagination, pixels)
    rollout_net = RolloutPolicy(A, config.rollout_hidden, pixels)
    batch = config.num_envs * config.num_steps
    num_updates = config.total_steps // batch

    def forward(tp, mp, obs):
        """``(logits [N, A], V [N])``; the model and the rollout policy get no gradient here."""
        if not config.imagination:
            return net.apply(tp["net"], obs)
        frames, rewards = imagine(model.apply, mp, rollout_net.apply, jax.lax.stop_gradient(tp["rollout"]), obs, A,
                                  config.rollout_steps, kind.next_obs)
        return net.apply(tp["net"], obs, frames, rewards)

    policy = onpolicy.Policy(lambda p, obs, memory, noise: (*forward(*p, obs), memory), head,
                             lambda p, obs, memory=(): forward(*p, obs.reshape((-1,) + obs_shape))[1].reshape(
                                 obs.shape[:-3]))

    def loss(tp, mp, data, hp):
        obs, action, adv, target = data
        logits, value = forward(tp, mp, obs)
        pg = losses.policy_gradient_loss(head.log_prob(logits, action), adv)
        v_loss = 0.5 * ((value - target) ** 2).mean()
        ent = head.entropy(logits).mean()
        distill, kl = distillation_loss(logits, rollout_net.apply(tp["rollout"], obs))
        total = pg + hp["vf_coef"] * v_loss - hp["ent_coef"] * ent + hp["distill_coef"] * distill
        return total, {"loss": total, "policy_loss": pg, "value_loss": v_loss, "entropy": ent,
                       "distill_loss": distill, "rollout_kl": kl}

    def tx(hp):
        return optimizer(hp["lr"], total_steps=num_updates, max_grad_norm=hp["max_grad_norm"], kind="rmsprop", eps=1e-5)

    def init(key, hp):
        k_net, k_roll, k_env, k_state = jax.random.split(key, 4)
        obs0 = jnp.zeros((1,) + obs_shape)
        frames = jnp.zeros((A, config.rollout_steps, 1) + obs_shape)
        params = {"net": net.init(k_net, obs0, frames, jnp.zeros((A, config.rollout_steps, 1))),
                  "rollout": rollout_net.init(k_roll, obs0)}
        env_state, ts = env.reset(k_env)
        return State(params, model_params, tx(hp).init(params), env_state, ts.obs, k_state, jnp.zeros((), jnp.int32))

    def update(state: State, hp):
        key, k_roll = jax.random.split(state.key)
        both = (state.params, state.model)
        env_state, obs, _, traj, ep = onpolicy.rollout(env, policy, both, state.env_state, state.obs, (), k_roll,
                                                       config.num_steps)
        adv, target = onpolicy.advantages(traj, onpolicy.bootstrap_values(policy, both, traj), hp["gamma"], 1.0)
        flat = jax.tree_util.tree_map(lambda x: x.reshape((batch,) + x.shape[2:]), (traj.obs, traj.action, adv, target))
        params, opt_state, _, stats, grad_norm = gradient_step(lambda p: loss(p, state.model, flat, hp), tx(hp),
                                                               state.params, state.opt_state)
        metrics = dict(stats, **ep, explained_variance=explained_variance(traj.value, target), grad_norm=grad_norm)
        return state._replace(params=params, opt_state=opt_state, env_state=env_state, obs=obs, key=key,
                              update=state.update + 1), metrics

    def act(state: State, obs, key=None):
        """Greedy action of the I2A policy (imagination included)."""
        return jnp.argmax(forward(state.params, state.model, obs)[0], -1)

    return Agent(config, init, update, act, num_updates, batch)
