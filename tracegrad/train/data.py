"""Datasets: examples, batches shuffled per epoch from a seed, and seeded splits.

A dataset is any sequence of examples. Items that are not ``Example`` objects are
normalised by ``as_examples``: a ``(input, label)`` pair, a mapping with an ``input``
key (and ``label`` or ``target``), or a plain input without a label.

Shuffling is a pure function of ``(seed, epoch)``: the order of epoch 3 is the same in
every process, so a resumed run sees the batches an uninterrupted one would have.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

Dataset = Sequence[Any]


@dataclass(frozen=True)
class Example:
    """One item of a dataset: the workflow's ``input``, an optional ``label`` (what a
    guide compares the output with) and ``info`` (anything else a guide may use)."""

    input: Any
    label: Any = None
    info: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The example as data (the evaluation cache keys examples by it)."""
        return {"input": self.input, "label": self.label, "info": self.info}


def as_example(item: Any) -> Example:
    """Normalise one dataset item to an ``Example`` (see the module docstring)."""
    if isinstance(item, Example):
        return item
    if isinstance(item, tuple) and len(item) == 2:
        return Example(item[0], item[1])
    if isinstance(item, Mapping) and "input" in item:
        label = item.get("label", item.get("target"))
        info = {k: v for k, v in item.items() if k not in ("input", "label", "target")}
        return Example(item["input"], label, info)
    return Example(item)


def as_examples(data: Dataset) -> list[Example]:
    """Normalise a dataset to a list of ``Example`` objects (see the module docstring)."""
    if isinstance(data, (str, bytes, Mapping)) or not isinstance(data, Sequence):
        raise TypeError(f"a dataset is a sequence of examples, not a {type(data).__name__}")
    return [as_example(item) for item in data]


def epoch_order(size: int, epoch: int, *, seed: int = 0, shuffle: bool = True) -> list[int]:
    """The order in which epoch ``epoch`` visits ``size`` examples (a function of the seed)."""
    order = list(range(size))
    if shuffle:
        random.Random(f"tracegrad-epoch:{seed}:{epoch}").shuffle(order)
    return order


def batch_indices(
    size: int, batch_size: int, epoch: int, *, seed: int = 0, shuffle: bool = True, drop_last: bool = False
) -> list[list[int]]:
    """The batches of epoch ``epoch``, as lists of dataset indices."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    order = epoch_order(size, epoch, seed=seed, shuffle=shuffle)
    batches = [order[i : i + batch_size] for i in range(0, size, batch_size)]
    if drop_last and batches and len(batches[-1]) < batch_size:
        batches.pop()
    return batches


def batches(
    data: Dataset,
    batch_size: int,
    *,
    epoch: int = 0,
    seed: int = 0,
    shuffle: bool = True,
    drop_last: bool = False,
) -> Iterator[list[Example]]:
    """The batches of one epoch of ``data``: deterministic for a given seed and epoch."""
    examples = as_examples(data)
    for indices in batch_indices(len(examples), batch_size, epoch, seed=seed, shuffle=shuffle, drop_last=drop_last):
        yield [examples[i] for i in indices]


def split(
    data: Dataset, validation: float | int = 0.2, *, seed: int = 0, shuffle: bool = True
) -> tuple[list[Example], list[Example]]:
    """Split ``data`` into ``(train, validation)``.

    ``validation`` is a fraction of the examples (``0 < validation < 1``) or a count.
    The split is a function of the seed only; each part keeps the dataset's order.
    """
    examples = as_examples(data)
    n = len(examples)
    if isinstance(validation, float) and not isinstance(validation, bool):
        if not 0.0 < validation < 1.0:
            raise ValueError(f"a validation fraction must be between 0 and 1, got {validation}")
        count = max(1, round(n * validation)) if n > 1 else 0
    else:
        count = int(validation)
    if not 0 <= count <= n:
        raise ValueError(f"cannot hold out {count} of {n} examples")
    order = list(range(n))
    if shuffle:
        random.Random(f"tracegrad-split:{seed}").shuffle(order)
    held = set(order[:count])
    return [e for i, e in enumerate(examples) if i not in held], [e for i, e in enumerate(examples) if i in held]


__all__ = ["Dataset", "Example", "as_example", "as_examples", "batch_indices", "batches", "epoch_order", "split"]
