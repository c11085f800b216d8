"""TensorBoard event files: one run per seed and sweep point (``tensorboard/seed0_lr=0.001``), so curves overlay.

Tags: ``charts/episode_return``, ``charts/episode_length``, ``charts/eval_return``,
``charts/steps_per_second``, ``losses/<name>`` for metrics whose name contains ``loss`` and
``metrics/<name>`` for the rest (summed ``*_sum`` metrics are left out: their means are the charts).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

from jaxrl.config import ConfigError
from jaxrl.core.agent import is_summed
from jaxrl.driver.results import derived


class TensorBoard:
    def __init__(self, out: Path, rows_meta: list[dict], sweep: list[str], purge_step: Optional[int]):
        try:
            from tensorboardX import SummaryWriter
        except ImportError:
            raise ConfigError("tensorboard", "needs the tensorboardX package: pip install tensorboardX")
        self.writers = []
        for meta in rows_meta:
            name = f"seed{meta['seed']}" + "".join(f"_{k}={meta[k]}" for k in sweep)
            self.writers.append(SummaryWriter(str(out / "tensorboard" / name), purge_step=purge_step))

    def write(self, step: int, m: dict, sps: float, eval_ret) -> None:
        d = derived(m)
        for b, w in enumerate(self.writers):
            for k, v in d.items():
                if math.isfinite(float(v[b])):
                    w.add_scalar(f"charts/{k}", float(v[b]), step)
            for k, v in m.items():
                if not is_summed(k):
                    w.add_scalar(f"losses/{k}" if "loss" in k else f"metrics/{k}", float(v[b]), step)
            w.add_scalar("charts/steps_per_second", sps, step)
            if eval_ret is not None:
                w.add_scalar("charts/eval_return", float(eval_ret[b]), step)
            w.flush()

    def close(self) -> None:
        for w in self.writers:
            w.close()
