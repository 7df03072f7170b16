"""What a training run reports: TensorBoard scalars under fixed tags, the settings once, and a
progress bar with iterations per second.

Tags (the same in every run, so runs overlay in TensorBoard):

* ``train/<loss name>``: the mean of each value returned by the training step over the last
  ``log_every`` iterations (``train/loss_ml``, ``train/loss_vqa`` ...);
* ``perf/iters_per_s``: training iterations per second since the run (re)started, and
  ``perf/<item>_per_s`` (``perf/pairs_per_s``) when each iteration handles a known number of items;
* ``<split>/<metric>`` for validation results (:meth:`TrainLog.metrics`);
* ``hparams``: a text table of the settings, written once when a run starts fresh.
"""
from __future__ import annotations

import logging
import os
import time

from tqdm import tqdm

logger = logging.getLogger(__name__)


def hparams_table(params: dict) -> str:
    """A Markdown table ``|param|value|`` of ``params`` (TensorBoard renders it)."""
    return "|param|value|\n|-|-|\n" + "\n".join(f"|{k}|{v}|" for k, v in params.items())


class TrainLog:
    """The TensorBoard writer and the progress bar of one run (a context manager).

    Args:
        logdir: TensorBoard folder (``RunDir.tb_dir``).
        total: the iteration the run trains to.
        start: the iteration it starts at (a resumed run); later events of an earlier attempt
            are purged so that curves do not fold back.
        log_every: iterations between ``train/*`` scalars and a log line.
        progress: show the tqdm bar (iterations and it/s).
        items_per_iter: items (image-text pairs, samples) per iteration: their rate is logged as
            ``perf/<item>_per_s`` and shown on the bar (0: not logged).
        item: the items' name.
    """

    def __init__(self, logdir: str | os.PathLike, total: int, start: int = 0, log_every: int = 100,
                 progress: bool = True, items_per_iter: int = 0, item: str = "items"):
        from torch.utils.tensorboard import SummaryWriter  # imports tensorboard: only when logging

        self.writer = SummaryWriter(str(logdir), purge_step=start or None)
        self.total, self.start, self.log_every = total, start, max(1, int(log_every))
        self.bar = tqdm(total=total, initial=start, disable=not progress, unit="it", dynamic_ncols=True)
        self.items_per_iter, self.item = int(items_per_iter), item
        self._sums: dict[str, float] = {}
        self._counts: dict[str, int] = {}  # iterations that reported each loss (some report on alternate steps)
        self._t0 = time.perf_counter()

    def hparams(self, params: dict) -> None:
        """Write the settings as the ``hparams`` text table (call once, on a fresh run)."""
        self.writer.add_text("hparams", hparams_table(params))

    def rate(self, iteration: int) -> float:
        """Iterations per second since this log was opened."""
        return (iteration - self.start) / max(time.perf_counter() - self._t0, 1e-9)

    def step(self, iteration: int, losses: dict[str, float]) -> dict[str, float] | None:
        """Record one training iteration (``iteration`` counts it); every ``log_every`` iterations
        and at ``total`` write the means as ``train/<name>`` with ``perf/iters_per_s`` and return them.

        A loss's mean is over the iterations that reported it (a run that alternates real and
        augmented batches reports ``loss_ml`` and ``aug_loss_ml`` on alternate iterations)."""
        self.bar.update(1)
        for k, v in losses.items():
            self._sums[k] = self._sums.get(k, 0.0) + float(v)
            self._counts[k] = self._counts.get(k, 0) + 1
        if iteration % self.log_every and iteration != self.total:
            return None
        means = {k: v / self._counts[k] for k, v in self._sums.items()}
        rate = self.rate(iteration)
        for k, v in means.items():
            self.writer.add_scalar(f"train/{k}", v, iteration)
        self.writer.add_scalar("perf/iters_per_s", rate, iteration)
        shown = {k: f"{v:.3f}" for k, v in means.items() if k.startswith("loss")}
        items = ""
        if self.items_per_iter:
            self.writer.add_scalar(f"perf/{self.item}_per_s", rate * self.items_per_iter, iteration)
            shown[f"{self.item}/s"] = f"{rate * self.items_per_iter:.1f}"
            items = f"  {rate * self.items_per_iter:.1f} {self.item}/s"
        self.bar.set_postfix(shown)
        logger.info("iter %d  %s  %.2f it/s%s", iteration, "  ".join(f"{k} {v:.4f}" for k, v in means.items()), rate,
                    items)
        self._sums, self._counts = {}, {}
        return means

    def metrics(self, iteration: int, values: dict) -> None:
        """Write validation results: numbers as scalars, strings (generated text) as text."""
        for key, value in values.items():
            if isinstance(value, str):
                self.writer.add_text(key, value, iteration)
            else:
                self.writer.add_scalar(key, value, iteration)

    def close(self) -> None:
        self.bar.close()
        self.writer.close()

    def __enter__(self) -> "TrainLog":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
