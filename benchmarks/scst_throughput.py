"""seq2seq / scst throughput on dialogue:chatterbot: sampled replies per second in stage 2 (SCST), and
reference replies per second in stage 1 (cross-entropy), 1 and 8 seeds.

    .venv/bin/python benchmarks/scst_throughput.py               # a few minutes
    .venv/bin/python benchmarks/scst_throughput.py --steps 64000 --repeats 3

Rows (each one compiled program, compile excluded, run ``--repeats`` times, best kept): the whole
training program (``jaxrl.core.program.make_train``) of ``experiments/scst_chatterbot.json``'s
configuration (LSTM 128, embeddings 64, 16 inputs x 4 samples per update, greedy baseline: per update
4 sampled decodes, 1 greedy decode, 1 teacher-forced pass with its gradient, BLEU-4 of 80 replies on
device) and of ``experiments/seq2seq_chatterbot.json`` (32 pairs per update: one teacher-forced pass
with its gradient, one greedy decode), ``--steps`` replies per seed, vmapped over the seeds.  Replies
are 21 tokens long (``max_len`` 20 + ``</s>``).

Writes ``benchmarks/results/scst_throughput.json``.  The figures depend on the machine's load (printed
beside them): compare rows of one run, interleaved, not runs.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax  # noqa: E402

from _common import compile_timed, print_table, timed_run, write_results  # noqa: E402
from jaxrl import envs, parallel  # noqa: E402
from jaxrl.agents import seq2seq  # noqa: E402
from jaxrl.core.program import make_train  # noqa: E402

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"
STAGES = {"scst": "scst_chatterbot.json", "ce": "seq2seq_chatterbot.json"}


def program(stage: str, seeds: int, steps: int):
    exp = json.loads((EXPERIMENTS / STAGES[stage]).read_text())
    cfg = seq2seq.Config.from_dict(dict(exp["config"], total_steps=steps))
    env = envs.make(exp["env"], num_envs=cfg.num_envs, num_seeds=seeds, **exp["env_options"])
    train = make_train(seq2seq.make_agent(cfg, env), num_log_points=10)
    return jax.jit(parallel.vmap(train)), jax.random.split(jax.random.PRNGKey(0), seeds), cfg


def measure(stage: str, seeds: int, args) -> dict:
    fn, keys, cfg = program(stage, seeds, args.steps)
    per_update = cfg.num_envs * (cfg.num_samples if stage == "scst" else 1)
    total = (args.steps // per_update) * per_update * seeds
    compiled, compile_s = compile_timed(fn, keys)
    best = min(timed_run(compiled, keys)[0] for _ in range(args.repeats))
    row = {"stage": stage, "seeds": seeds, "replies_per_s": total / best, "seconds": best, "compile_s": compile_s,
           "load_1m": os.getloadavg()[0]}
    print_table([row], list(row))
    return row


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=12_800, help="replies per seed (default 12800: 200 scst updates)")
    p.add_argument("--repeats", type=int, default=2, help="runs per row, best kept (default 2)")
    args = p.parse_args(argv)
    rows = [measure(stage, seeds, args) for seeds in (1, 8) for stage in STAGES]  # interleaved per seed count
    print()
    print_table(rows, ["stage", "seeds", "replies_per_s", "compile_s", "load_1m"])
    write_results("scst_throughput", rows, {"argv": sys.argv, "steps": args.steps, "experiments": STAGES})
    return 0


if __name__ == "__main__":
    sys.exit(main())
