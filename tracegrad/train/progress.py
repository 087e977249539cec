"""The trainer's progress bar: a subscriber to the run's events (tqdm, on stderr).

One tick per step, with the last batch score, the best score, the calls and the cost
so far. While a step runs, the bar says what it is doing -- running the batch,
waiting for the optimizer's proposals, scoring them, validating one -- so a step
spent waiting on a slow model shows where it is.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

from tracegrad.events import Evaluated, Event, Proposed, RunEnded, RunStarted, StepEnded, StepStarted


class ProgressBar:
    """A tqdm bar driven by run events; ``Trainer(quiet=True)`` leaves it out.

    Args:
        desc: the bar's label.
        file: where to draw it (default: stderr).
    """

    def __init__(self, *, desc: str = "train", file: TextIO | None = None) -> None:
        self.desc = desc
        self.file = file
        self.bar: Any = None
        self._figures = ""

    def __call__(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self._open(event)
        elif self.bar is None:
            return
        elif isinstance(event, StepStarted):
            self._doing(f"step {event.step}: running the batch")
        elif isinstance(event, Evaluated):
            self._evaluated(event)
        elif isinstance(event, Proposed):
            self._doing(f"step {event.step}: scoring the proposals")
        elif isinstance(event, StepEnded):
            self._ended(event)
        elif isinstance(event, RunEnded):
            self.close()

    def _open(self, event: RunStarted) -> None:
        from tqdm.auto import tqdm

        self.close()
        model = event.settings.get("model")
        if model:
            tqdm.write(f"model: {model}", file=self.file or sys.stderr)
        self.bar = tqdm(total=event.total_steps, initial=event.step, desc=self.desc, dynamic_ncols=True, file=self.file)

    def _evaluated(self, event: Evaluated) -> None:
        if event.split == "batch":
            self._doing(f"step {event.step}: proposing")
        elif event.split == "candidate":
            self._doing(f"step {event.step}: scored proposal {event.sample + 1} on the batch")
        else:
            self._doing(f"step {event.step}: validated proposal {event.sample + 1}")

    def _ended(self, event: StepEnded) -> None:
        total = event.total
        best = "-" if event.best_score is None else f"{event.best_score:.3f}"
        batch = "-" if event.batch_score is None else f"{event.batch_score:.3f}"
        cost = float(total.get("cost_usd", 0.0))
        self._figures = f"batch={batch}, best={best}, calls={total.get('calls', 0)}, cost=${cost:.4f}"
        self.bar.set_postfix_str(self._figures, refresh=False)
        self.bar.update(1)
        self.bar.refresh()  # a step is slow enough to draw each one

    def _doing(self, what: str) -> None:
        self.bar.set_postfix_str(f"{self._figures}, {what}" if self._figures else what)

    def close(self) -> None:
        """Close the bar (a run's end does)."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None


__all__ = ["ProgressBar"]
