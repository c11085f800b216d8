"""The dialogue backend's report: greedy BLEU on every train and test pair, and example replies.

Run at the end of ``jaxrl train`` (``summary.json["dialogue"]``, its ``bleu`` also at the top level) and by ``jaxrl eval RUN``
(:class:`jaxrl.envs.registry.Report`). ``Agent.act`` decodes every input of both splits, for every
batch member (seed, sweep point) at once, in chunks of :data:`CHUNK` inputs.
"""
from __future__ import annotations

import numpy as np

from jaxrl.envs.registry import Report

CHUNK = 256  # inputs decoded per call (a fixed shape: one compile)


def replies(agent, state, inputs: np.ndarray) -> np.ndarray:
    """Greedy replies of every batch member: inputs ``[N, L]`` -> ``[B, N, T]`` token ids."""
    import jax

    act = jax.jit(jax.vmap(lambda s, x: agent.act(s, x, jax.random.PRNGKey(0)), in_axes=(0, None)))
    n = len(inputs)
    out = []
    for start in range(0, n, CHUNK):
        part = inputs[start:start + CHUNK]
        padded = np.concatenate([part, np.repeat(part[:1], CHUNK - len(part), 0)]) if len(part) < CHUNK else part
        out.append(np.asarray(act(state, padded))[:, :len(part)])
    return np.concatenate(out, 1)


def split_bleu(agent, state, split, order: int) -> tuple[np.ndarray, np.ndarray]:
    """(mean BLEU per batch member ``[B]``, replies ``[B, N, T]``) of greedy decoding on one split."""
    import jax.numpy as jnp

    from jaxrl.envs.dialogue.bleu import batch_bleu
    from jaxrl.envs.dialogue.data import EOS

    reps = replies(agent, state, split.inputs)
    b, n, t = reps.shape
    refs = np.broadcast_to(split.replies, (b,) + split.replies.shape).reshape(b * n, -1)
    scores = np.asarray(batch_bleu(jnp.asarray(reps.reshape(b * n, t)), jnp.asarray(refs), EOS, order))
    return scores.reshape(b, n).mean(1), reps


def run(name: str, env_options: dict, agent, state, out=None, seed: int = 0, examples: int = 5) -> dict:
    from jaxrl.envs.dialogue import dataset, options_of
    from jaxrl.envs.dialogue.data import untokenize

    ds = dataset(name, env_options)
    order = options_of(name, env_options)["order"]
    train, _ = split_bleu(agent, state, ds.train, order)
    test, reps = split_bleu(agent, state, ds.test, order)
    shown = [{"input": untokenize(a), "reference": untokenize(b), "reply": untokenize(ds.vocab.decode(r))}
             for (a, b), r in zip(ds.test.text[:examples], reps[0])]
    return {"bleu": {"train": [float(x) for x in train], "test": [float(x) for x in test]},
            "order": order, "pairs": {"train": len(ds.train.inputs), "test": len(ds.test.inputs)},
            "vocab_size": ds.vocab.size, "examples": shown}


def text(result: dict) -> list[str]:
    b, n = result["bleu"], result["pairs"]
    fmt = lambda xs: ", ".join(f"{x:.3f}" for x in xs)  # noqa: E731
    lines = [f"BLEU-{result['order']} of greedy replies, per seed: train {fmt(b['train'])} ({n['train']:,} pairs); "
             f"test {fmt(b['test'])} ({n['test']:,} pairs)"]
    if result.get("examples"):
        lines.append("test examples (first seed):  > input  = reference  < reply")
        for e in result["examples"]:
            lines += [f"  > {e['input']}", f"  = {e['reference']}", f"  < {e['reply']}"]
    return lines


REPORT = Report(run=run, text=text, options=(("--examples", dict(type=int, default=5, metavar="N",
                                                                   help="example replies to show (default 5)")),),
                promote=("bleu",))
