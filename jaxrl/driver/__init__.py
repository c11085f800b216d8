"""The thin Python driver around the compiled training program (see :mod:`jaxrl.driver.loop`).

One module per concern: :mod:`~jaxrl.driver.spec` (what defines a run, validation),
:mod:`~jaxrl.driver.programs` (compiling ``init``/``chunk``/``evaluate``), :mod:`~jaxrl.driver.loop`
(the loop), :mod:`~jaxrl.driver.results` (results folder, ``metrics.csv``), :mod:`~jaxrl.driver.progress`,
:mod:`~jaxrl.driver.tensorboard`, :mod:`~jaxrl.driver.guards` (signals, ``--max-minutes``, NaN guard,
memory check) and :mod:`~jaxrl.driver.cache` (persistent compilation cache).
"""
from jaxrl.driver.guards import Diverged, Interrupted, RunStopped
from jaxrl.driver.loop import train_run
from jaxrl.driver.spec import RunSpec, from_run_dir

__all__ = ["train_run", "RunSpec", "from_run_dir", "RunStopped", "Interrupted", "Diverged"]
