"""Datasets: normalised examples, batches shuffled per epoch from a seed, seeded splits."""

from __future__ import annotations

import pytest

from tracegrad.train import Example, as_examples, batches, split
from tracegrad.train.data import batch_indices, epoch_order


def test_items_are_normalised_to_examples():
    e = Example("x", "y", {"id": 3})
    data = as_examples(
        [e, ("in", "out"), {"input": "q", "target": "a", "id": 7}, {"input": "r", "label": "b"}, "plain"]
    )
    assert data[0] is e
    assert data[1] == Example("in", "out")
    assert data[2] == Example("q", "a", {"id": 7})
    assert data[3] == Example("r", "b")
    assert data[4] == Example("plain")


@pytest.mark.parametrize("bad", ["a string", {"input": 1}, 42])
def test_a_dataset_is_a_sequence(bad):
    with pytest.raises(TypeError, match="sequence"):
        as_examples(bad)


def test_batches_cover_the_epoch_and_depend_only_on_seed_and_epoch():
    first = batch_indices(10, 3, 0, seed=1)
    assert [len(b) for b in first] == [3, 3, 3, 1]
    assert sorted(i for b in first for i in b) == list(range(10))
    assert batch_indices(10, 3, 0, seed=1) == first
    assert batch_indices(10, 3, 1, seed=1) != first  # another epoch, another order
    assert batch_indices(10, 3, 0, seed=2) != first
    assert batch_indices(10, 3, 0, seed=1, drop_last=True) == first[:3]
    assert epoch_order(5, 0, shuffle=False) == [0, 1, 2, 3, 4]


def test_batches_of_examples():
    data = [(i, i) for i in range(5)]
    got = list(batches(data, 2, epoch=0, seed=0, shuffle=False))
    assert [[e.input for e in b] for b in got] == [[0, 1], [2, 3], [4]]


def test_split_is_seeded_and_disjoint():
    data = [(i, i) for i in range(20)]
    train, val = split(data, 0.25, seed=3)
    assert len(val) == 5 and len(train) == 15
    assert {e.input for e in train} | {e.input for e in val} == set(range(20))
    assert not {e.input for e in train} & {e.input for e in val}
    assert split(data, 0.25, seed=3) == (train, val)
    assert split(data, 0.25, seed=4) != (train, val)
    assert len(split(data, 4)[1]) == 4
    with pytest.raises(ValueError):
        split(data, 1.5)
