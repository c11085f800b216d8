"""The one training loop: ``jaxrl train``, the learning tests and the examples all run it.

It compiles three programs, ``init``, ``chunk`` and ``evaluate`` (each ``jit(vmap(...))`` over the
batch of seeds and sweep points, sharded over devices by :mod:`jaxrl.parallel`), then calls the chunk
program again and again. A chunk runs ``n`` updates (``n`` is an argument, so one program serves every
length) and folds their metrics into an accumulator (:mod:`jaxrl.core.program`). Chunks are sized by
wall time (about a second each, the first ones a single update), so the progress line, Ctrl-C and
``--max-minutes`` respond within a second or two whatever the budget; logging points are fixed by
the config (``--log-every``), so a run's rows, evaluations and checkpoints do not depend on timing,
and a resumed run reproduces them bit for bit (gymnax).

Between chunks, on the host: the NaN guard, metrics rows (``metrics.csv``, TensorBoard), greedy
evaluation (``--eval-every``), atomic checkpoints (``--checkpoint-every``) and the stop decision. The
next chunk is dispatched before the previous one's results are read, so host work overlaps device work.
Nothing inside the compiled code calls back to Python.

Exit statuses of ``jaxrl train``: 0 finished (or stopped by ``--max-minutes``, resumable); 2 bad input
(nothing written); 3 diverged (NaN guard); 130 SIGINT / 143 SIGTERM (checkpoint saved, continue with
``--resume RUN_DIR``).
"""
from __future__ import annotations

import sys
import time
from typing import Optional

import numpy as np

from jaxrl.driver import guards, results
from jaxrl.driver.guards import Interrupted
from jaxrl.driver.programs import Programs, build
from jaxrl.driver.spec import RunSpec

CHUNK_SECONDS = 1.0  # target wall time of one chunk after the first two


class Schedule:
    """Where logging points, evaluations and checkpoints fall (a function of the config alone)."""

    def __init__(self, spec: RunSpec, num_updates: int, steps_per_update: int):
        self.n, self.spu = num_updates, steps_per_update
        total = num_updates * steps_per_update
        log_every = spec.log_every or max(1, total // 100)
        self.per_log = max(1, log_every // steps_per_update)
        default = max(1, total // 10)
        self.eval_every = default if spec.eval_every is None else spec.eval_every
        self.ckpt_every = default if spec.checkpoint_every is None else spec.checkpoint_every
        self.log_every = log_every

    def is_log_point(self, end: int) -> bool:
        return end % self.per_log == 0 or end == self.n

    def previous_log_point(self, end: int) -> int:
        return ((end - 1) // self.per_log) * self.per_log

    def next_boundary(self, done: int, stop_after: Optional[int]) -> int:
        b = min(self.n, (done // self.per_log + 1) * self.per_log)
        return min(b, stop_after) if stop_after is not None and stop_after > done else b

    def crossed(self, start: int, end: int, every: int) -> bool:
        return every > 0 and (end * self.spu) // every > (start * self.spu) // every


class Run:
    """The state of one ``train_run`` call: the programs, the files and the loop's bookkeeping."""

    def __init__(self, spec: RunSpec, progress: bool, stop_after: Optional[int]):
        self.spec, self.show_progress, self.stop_after = spec, progress, stop_after
        self.p: Programs = build(spec, self.message)
        self.spec = spec = self.p.spec
        self.sched = Schedule(spec, self.p.agent.num_updates, self.p.agent.steps_per_update)
        self.rows_meta = spec.rows_meta()
        self.history, self.evals = [], {}
        self.done, self.session_start, self.wall_offset = 0, 0, 0.0
        self.last_saved, self.ret_recent, self.rate = None, None, None
        self.csv, self.tb, self.stop_eval, self.note = None, None, None, ""

    def message(self, text: str) -> None:
        """A line on stderr before the progress line exists (an algorithm's ``prepare`` stages)."""
        if self.show_progress:
            print(text, file=sys.stderr, flush=True)

    # ----------------------------------------------------------------------------- files
    def open_results(self) -> None:
        p, spec = self.p, self.spec
        out = p.out
        if out is None:
            return
        with_eval = p.eval_c is not None
        if spec.resume:
            if self.history:
                results.rewrite_csv(out / "metrics.csv", self.history, self.evals, self.rows_meta, list(spec.sweep),
                                    with_eval, self.sched.spu)
            self.csv = results.MetricsCSV(out / "metrics.csv", self.rows_meta, list(spec.sweep), with_eval,
                                          append=True)
        else:
            out.mkdir(parents=True, exist_ok=True)
            results.write_json_atomic(out / "config.json", spec.to_json(
                log_every=self.sched.log_every, eval_every=self.sched.eval_every,
                checkpoint_every=self.sched.ckpt_every, **p.environment))
            self.csv = results.MetricsCSV(out / "metrics.csv", self.rows_meta, list(spec.sweep), with_eval)
        if spec.tensorboard:
            from jaxrl.driver.tensorboard import TensorBoard

            purge = self.done * self.sched.spu + 1 if spec.resume else None
            self.tb = TensorBoard(out, self.rows_meta, list(spec.sweep), purge)

    def close(self) -> None:
        for f in (self.csv, self.tb):
            if f is not None:
                f.close()

    # ----------------------------------------------------------------------------- per chunk
    def elapsed(self) -> float:
        return self.wall_offset + time.perf_counter() - self.t_start

    def sps(self) -> float:
        dt = max(time.perf_counter() - self.t_start, 1e-9)
        return (self.done_processed - self.session_start) * self.sched.spu * self.spec.batch / dt

    def process(self, item) -> None:
        """Host side of a finished chunk: NaN guard, and at logging points the rows and progress."""
        from jaxrl import parallel
        from jaxrl.core.program import reduce

        start, end, acc, finite, ev, is_log = item
        acc, finite, ev = parallel.to_host((acc, finite, ev))  # one fetch of everything the host needs
        guards.nan_guard(acc.first_bad, finite, end, self.rows_meta, self.p.leaf_paths, self.last_saved)
        self.done_processed = end
        n = end - self.session_start
        self.rate = n / max(time.perf_counter() - self.t_start, 1e-9)
        if is_log:
            m = reduce(acc, np)
            if ev is not None:
                self.evals[end] = ev
            now = self.elapsed()
            self.history.append((end, now, m))
            ret = results.derived(m)["episode_return"]
            ret = ret[np.isfinite(ret)]
            self.ret_recent = float(ret.mean()) if ret.size else self.ret_recent
            evals = results.eval_mean(self.evals.get(end)) if ev is not None else None
            self.note = progress_note(m, self.p.agent.progress)
            if self.csv is not None:
                self.csv.write(end, end * self.sched.spu, now, m, evals)
            if self.tb is not None:
                self.tb.write(end * self.sched.spu, m, self.sps(), evals)
        elif "episodes" in acc.sums and acc.sums["episodes"].sum() > 0:  # the logging interval so far
            self.ret_recent = float(acc.sums["episode_return_sum"].sum() / acc.sums["episodes"].sum())
        self.prog.update(end * self.sched.spu * self.spec.batch, self.sps(), self.ret_recent, note=self.note)

    def save(self, state, acc, end: int) -> None:
        from jaxrl import checkpoint

        if self.p.run_dir is None:
            return
        extras = results.history_to_extras(self.history, self.evals)
        meta = {"wall_time": self.elapsed(), "env_steps": end * self.sched.spu}
        self.last_saved = checkpoint.save(self.p.run_dir, end, {"agent": state, "acc": acc}, meta, extras)

    # ----------------------------------------------------------------------------- the loop
    def chunk_size(self) -> int:
        bound = self.sched.next_boundary(self.done, self.stop_after)
        n = 1 if self.rate is None else max(1, int(self.rate * CHUNK_SECONDS))
        return min(n, bound - self.done)

    def loop(self, state, acc) -> tuple:
        """Run chunks until the end or a stop; returns ``(state, acc, stop reason or None)``."""
        import jax.numpy as jnp

        from jaxrl import parallel

        p, sched = self.p, self.sched
        pending, reason = None, None
        with guards.StopFlag(self.spec.max_minutes) as flag:
            flag.start_clock()
            while self.done < sched.n:
                start = self.done
                n = self.chunk_size()
                state, acc_out, finite = p.chunk_c(state, acc, p.hp, jnp.int32(n), jnp.int32(start))
                end = self.done = start + n
                is_log = sched.is_log_point(end)
                prev = sched.previous_log_point(end)
                ev = None
                if is_log and p.eval_c is not None and (end == sched.n or sched.crossed(prev, end, sched.eval_every)):
                    ev = p.eval_c(state, p.keys, jnp.int32(end))
                if pending is not None:
                    self.process(pending)
                pending = (start, end, acc_out, finite, ev, is_log)
                acc = p.acc0 if is_log else acc_out
                stop = flag.reason or ("SIGTERM" if self.stop_after is not None and end >= self.stop_after else None)
                stop = parallel.any_process(stop is not None) and (stop or "SIGTERM")
                ckpt = is_log and (end == sched.n or sched.crossed(prev, end, sched.ckpt_every))
                if p.run_dir is not None and (stop or ckpt):
                    self.process(pending)
                    pending = None
                    self.save(state, acc, end)
                if stop and end < sched.n:
                    reason = stop
                    break
            if pending is not None:
                self.process(pending)
        return state, acc, reason


def progress_note(m: dict, names) -> str:
    """The agent's progress metrics (``Agent.progress``), mean over the batch: ``games 1,234 | arena_score 0.62``."""
    parts = []
    for k in names:
        if k in m:
            v = float(np.mean(m[k]))
            parts.append(f"{k} {v:,.0f}" if abs(v) >= 1000 else f"{k} {v:.3g}")
    return " | ".join(parts)


def train_run(spec: RunSpec, progress: bool = True, stop_after: Optional[int] = None) -> dict:
    """Run a training job end to end and fill the results folder. Returns the summary dict.

    ``spec.resume``: continue ``spec.out`` from its last checkpoint (:func:`jaxrl.driver.spec.from_run_dir`).
    ``stop_after``: behave as if SIGTERM arrived once ``stop_after`` updates are done (for tests).
    Raises :class:`~jaxrl.driver.guards.Interrupted` (SIGINT/SIGTERM, checkpoint saved) or
    :class:`~jaxrl.driver.guards.Diverged` (NaN guard). ``--max-minutes`` returns normally with
    ``summary["finished"] = False``.
    """
    import jax

    from jaxrl.driver.progress import Progress

    run = Run(spec, progress, stop_after)
    p = run.p
    state, acc = p.init_c(p.keys, p.hp), p.acc0
    if spec.resume:
        state, acc = run_resume(run, state)
    elif p.init_leaves is not None:  # --init-from: those leaves from another run's last checkpoint
        from jaxrl.checkpoint import put_leaves

        state = put_leaves(state, p.init_leaves[0])
    run.open_results()
    run.prog = Progress(f"{spec.algo} {spec.env_id} x{spec.batch}", run.sched.n * run.sched.spu * spec.batch,
                        enabled=progress)
    run.prog.message(p.compile_note())
    if p.init_leaves is not None and not spec.resume:
        run.prog.message(f"jaxrl: {spec.init_keys} initialised from {p.init_leaves[1]}")
    jax.block_until_ready(state)
    run.t_start, run.session_start, run.done_processed = time.perf_counter(), run.done, run.done
    try:
        state, acc, reason = run.loop(state, acc)
        jax.block_until_ready(state)
    finally:
        run.close()
    return finish(run, state, acc, reason)


def run_resume(run: Run, state):
    from jaxrl import checkpoint

    p = run.p
    restored, meta, extras, _ = checkpoint.load_latest(p.run_dir, {"agent": state, "acc": p.acc0})
    state, acc = restored["agent"], restored["acc"]
    if not p.env_restorable:  # the env state lives outside JAX (envpool): fresh episodes
        state = checkpoint.splice_env(state, p.init_c(p.keys, p.hp))
    run.done, run.wall_offset = int(meta["update"]), float(meta["wall_time"])
    run.history, run.evals = results.history_from_extras(extras)
    return state, acc


def finish(run: Run, state, acc, reason: Optional[str]) -> dict:
    """Evaluate a stopped run, write ``summary.json``; raise :class:`Interrupted` on a signal."""
    import jax.numpy as jnp

    from jaxrl import parallel

    p, spec, sched = run.p, run.spec, run.sched
    wall = time.perf_counter() - run.t_start
    last_eval = None
    if run.evals and max(run.evals) == run.done:
        last_eval = run.evals[run.done]
    elif p.eval_c is not None:  # stopped between evaluations: evaluate the policy as it is
        last_eval = np.asarray(parallel.to_host(p.eval_c(state, p.keys, jnp.int32(run.done))))
    summary = {
        "algo": spec.algo, "env": spec.env_id, "num_seeds": spec.num_seeds,
        "finished": reason is None, "updates": run.done, "num_updates": sched.n,
        "final_return": [results.nan_to_none(x) for x in results.final_returns(run.history, sched.n)],
        "steps_per_second": (run.done - run.session_start) * sched.spu * spec.batch / wall if wall > 0 else None,
        "compile_seconds": p.compile_seconds, "compile_cache": p.cache_note,
        "wall_seconds": wall, "env_steps_per_seed": sched.n * sched.spu,
        "points": [dict(pt, seeds=list(range(spec.num_seeds))) for pt in spec.sweep_points()],
    }
    if reason is not None:
        summary["stopped_by"] = reason
    if last_eval is not None:
        summary["eval_return"] = [results.nan_to_none(float(x)) for x in last_eval.mean(-1)]
        summary["eval_return_std"] = [results.nan_to_none(float(x)) for x in last_eval.std(-1)]
        summary["eval_episodes"] = int(last_eval.shape[-1])
        from jaxrl.evaluation import plays_games

        if plays_games(p.env, p.agent):
            summary["eval_opponent"] = "random"  # make_game_evaluate: outcomes +1/0/-1 against a random player
    if spec.resume:
        summary["resumed_from_update"] = run.session_start
    summary.update(p.summary_extra)
    if p.eval_c is not None:  # the env backend's own evaluation (Backend.report), under its name
        from jaxrl.evaluation import backend_report

        summary.update(backend_report(spec.env_id, spec.env_options, p.agent, state, out=p.out))
    if p.out is not None:
        results.write_json_atomic(p.out / "summary.json", summary)
    if reason is not None and reason != "max_minutes":
        import signal

        signum = getattr(signal, reason)
        where = f"; checkpoint {run.last_saved}" if run.last_saved else ""
        hint = f"; continue with: jaxrl train --resume {p.run_dir}" if p.run_dir is not None else ""
        raise Interrupted(f"{reason}: stopped after update {run.done} of {sched.n}{where}{hint}", signum)
    summary["_state"] = state
    return summary
