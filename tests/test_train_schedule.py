"""The training batch order: seeded, length-grouped, and resumable by a warm-started stage (`skip_batches`)."""
from __future__ import annotations

import random

from qa.training.train import batch_schedule, length_grouped_batches

CFG = {"batch_size": 4, "length_group_size": 3, "seed": 7, "epochs": 2, "skip_batches": 0}
LENGTHS = [random.Random(0).randint(10, 384) for _ in range(101)]


def test_batches_cover_every_feature_once_per_epoch_and_group_by_length():
    batches = length_grouped_batches(LENGTHS, 4, 3, seed=7)
    flat = sorted(i for b in batches for i in b)
    assert flat == list(range(len(LENGTHS)))
    assert all(len(b) <= 4 for b in batches)
    # within a batch the lengths are sorted (cut from a length-sorted mega-batch)
    assert all([LENGTHS[i] for i in b] == sorted(LENGTHS[i] for i in b) for b in batches)


def test_schedule_is_seeded_and_spans_all_epochs():
    a, b = batch_schedule(LENGTHS, CFG), batch_schedule(LENGTHS, CFG)
    assert a == b
    assert a != batch_schedule(LENGTHS, {**CFG, "seed": 8})
    per_epoch = len(length_grouped_batches(LENGTHS, 4, 3, seed=7))
    assert len(a) == 2 * per_epoch
    assert a[per_epoch:] == length_grouped_batches(LENGTHS, 4, 3, seed=8)  # epoch e uses seed + e


def test_skip_batches_continues_where_the_previous_stage_stopped():
    full = batch_schedule(LENGTHS, CFG)
    rest = batch_schedule(LENGTHS, {**CFG, "skip_batches": 10})
    assert rest == full[10:]
    seen = {i for b in full[:10] for i in b}
    assert not seen & {i for b in rest[: len(full) // 2 - 10] for i in b}  # same epoch: no repeats
    assert batch_schedule(LENGTHS, {k: v for k, v in CFG.items() if k != "skip_batches"}) == full
