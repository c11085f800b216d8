"""``jaxrl chat RUN_DIR``: talk to a trained dialogue model (``seq2seq``/``scst`` on a ``dialogue:`` env).

Each line read from the terminal (or standard input) is tokenized with the run's vocabulary (words it
never saw become ``<unk>``, longer lines are cut to ``max_len`` words) and answered by the model's
greedy reply (``--beam N``: beam search), one line per input. ``--member`` picks the seed (and sweep
point) of a multi-seed run, in ``summary.json`` order. An empty line or end of input ends the chat.
"""
from __future__ import annotations

import sys

from jaxrl.config import ConfigError

HELP = "talk to a trained dialogue model (seq2seq, scst) in the terminal"


def add_arguments(p) -> None:
    from jaxrl.cli import typed

    p.add_argument("run_dir", metavar="RUN_DIR", help="results folder of jaxrl train seq2seq/scst")
    p.add_argument("--member", type=typed(int, "member"), default=0,
                   help="which seed / sweep point of the run answers (default 0)")
    p.add_argument("--beam", type=typed(int, "beam"), default=0,
                   help="beam search of this width (default: the run's beam_size, 1 = greedy)")


def replier(run_dir: str, member: int = 0, beam: int = 0):
    """-> ``reply(line: str) -> str`` of one batch member of a dialogue run."""
    import dataclasses

    import jax
    import jax.numpy as jnp

    from jaxrl import agents, envs
    from jaxrl.commands.eval import load_run
    from jaxrl.envs.dialogue import data, dataset

    spec, _, agent, state = load_run(run_dir)
    backend, name = envs.resolve(spec.env_id)
    if backend.name != "dialogue":
        raise ConfigError("run_dir", f"{run_dir} is a {spec.algo} run on {spec.env_id}; jaxrl chat needs a dialogue "
                                     f"model (jaxrl train seq2seq or scst)")
    batch = len(spec.sweep_points()) * spec.num_seeds
    if not 0 <= member < batch:
        raise ConfigError("member", f"must be in [0, {batch}) for this run; got {member}")
    if beam < 0:
        raise ConfigError("beam", f"must be >= 1 (or 0: the run's beam_size); got {beam}")
    if beam:
        module, _ = agents.get(spec.algo)
        env = envs.make(spec.env_id, num_envs=spec.config.num_envs, **spec.env_options)
        agent = module.make_agent(dataclasses.replace(spec.config, beam_size=beam), env)
    ds = dataset(name, spec.env_options)
    one = jax.tree_util.tree_map(lambda x: x[member], state)
    act = jax.jit(lambda x: agent.act(one, x, jax.random.PRNGKey(0)))

    def reply(line: str) -> str:
        ids = ds.vocab.encode(data.tokenize(line)[:ds.max_len], ds.max_len)
        return data.untokenize(ds.vocab.decode(act(jnp.asarray(ids)[None])[0]))

    return reply


def run(args) -> int:
    reply = replier(args.run_dir, args.member, args.beam)
    tty = sys.stdin.isatty()
    if tty:
        print("jaxrl chat: type a line (an empty line ends)", flush=True)
    while True:
        if tty:
            print("> ", end="", flush=True)
        line = sys.stdin.readline()
        if not line.strip():
            return 0
        print(reply(line), flush=True)
