"""The progress bar of ``JaxOptimizer.fit``: one tick per step, the loss in the postfix.

Reading a loss waits for its step to finish on the device, so the bar reads one at
most every ``interval`` seconds; between reads the loop dispatches steps ahead of the
device exactly as it does without a bar. A ``scan`` loop is one dispatch: its bar
fills at the end.
"""

from __future__ import annotations

import time
from typing import Any, TextIO


class FitProgress:
    """A tqdm bar over ``steps`` steps (nothing at all when ``quiet``)."""

    def __init__(
        self, steps: int, *, quiet: bool, desc: str = "fit", interval: float = 0.5, file: TextIO | None = None
    ) -> None:
        self.bar: Any = None
        self.interval = interval
        self._read = time.monotonic()
        if not quiet:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=steps, desc=desc, dynamic_ncols=True, file=file)

    def step(self, loss: Any) -> None:
        """A step was dispatched; ``loss`` is its (device) loss, read now and then."""
        bar = self.bar
        if bar is None:
            return
        bar.update(1)
        now = time.monotonic()
        if now - self._read >= self.interval:
            self._read = now
            bar.set_postfix(loss=f"{float(loss):.6g}", refresh=False)

    def close(self, loss: float | None = None) -> None:
        """Fill the bar (with the last ``loss``, when the loop finished) and close it."""
        bar = self.bar
        if bar is None:
            return
        self.bar = None
        if loss is not None:
            bar.set_postfix(loss=f"{loss:.6g}", refresh=False)
            bar.update(bar.total - bar.n)
        bar.close()


__all__ = ["FitProgress"]
