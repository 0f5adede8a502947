"""Shared normalisation: the decoder and the training loss, against hand computations."""

import math

import numpy as np
import pytest

from qa.reader.decode import Windows, decode_shared, decode_window


def _windows(offsets_per_window, context_of):
    return Windows(encoding=None, context_of=context_of, offsets=offsets_per_window, word_spans=None)


def test_one_window_shared_equals_per_window():
    rng = np.random.default_rng(0)
    offs = [None, None] + [(i * 2, i * 2 + 1) for i in range(6)] + [None]
    S = rng.normal(size=(1, len(offs))).astype(np.float32)
    E = rng.normal(size=(1, len(offs))).astype(np.float32)
    a, null_a = decode_window(S[0], E[0], offs, 0, 30, 20)
    b, null_b = decode_shared(S, E, _windows([offs], [0]), 30, 20)
    assert math.isclose(null_a, null_b, rel_tol=1e-5)
    assert [(c.start, c.end) for c in a] == [(c.start, c.end) for c in b]
    assert np.allclose([c.prob for c in a], [c.prob for c in b], rtol=1e-5)


def test_two_windows_share_one_softmax_by_hand():
    # window 0: [CLS] t t ; window 1: [CLS] t  -- tokens are single characters at offsets
    offs0 = [None, (0, 1), (2, 3)]
    offs1 = [None, (0, 1)]
    S = np.array([[0.0, 1.0, 2.0], [math.log(2), 3.0, -1e9]], dtype=np.float64)
    E = np.array([[0.0, 2.0, 1.0], [0.0, 0.0, -1e9]], dtype=np.float64)
    cands, null = decode_shared(S, E, _windows([offs0, offs1], [0, 1]), 30, 20)
    null_s = math.log((math.exp(0.0) + math.exp(math.log(2))) / 2)
    zs = math.log(math.exp(1) + math.exp(2) + math.exp(3) + math.exp(null_s))
    null_e = math.log((1 + 1) / 2)
    ze = math.log(math.exp(2) + math.exp(1) + math.exp(0) + math.exp(null_e))
    assert math.isclose(null, math.exp(null_s - zs + null_e - ze), rel_tol=1e-6)
    by_place = {(c.context_index, c.start, c.end): c.prob for c in cands}
    assert math.isclose(by_place[(1, 0, 1)], math.exp(3 - zs + 0 - ze), rel_tol=1e-6)
    assert math.isclose(by_place[(0, 0, 3)], math.exp(1 - zs + 1 - ze), rel_tol=1e-6)
    assert (0, 2, 1) not in by_place  # end before start
    assert sum(by_place.values()) + null <= 1 + 1e-9


def test_shared_norm_loss_by_hand():
    torch = pytest.importorskip("torch")
    from qa.training.shared_norm import shared_norm_loss

    logits = torch.tensor([[0.5, 1.0, 2.0, 0.0], [0.0, 3.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]])
    ctx = torch.tensor([[0, 1, 1, 0], [0, 1, 1, 0], [0, 1, 1, 1]], dtype=torch.bool)
    pos = torch.zeros_like(ctx)
    pos[0, 2] = True  # gold start in window 0 of group 0 (windows 0 and 1)
    member = torch.tensor([[1, 1, 0], [0, 0, 1]], dtype=torch.bool)
    null = torch.tensor([False, True])  # group 1 (window 2) has no answer
    loss = shared_norm_loss(logits, ctx, pos, member, null)
    null0 = math.log((math.exp(0.5) + math.exp(0.0)) / 2)
    z0 = math.log(math.exp(1) + math.exp(2) + math.exp(3) + math.exp(0) + math.exp(null0))
    l0 = z0 - 2.0
    z1 = math.log(math.exp(0) * 3 + math.exp(1.0))
    l1 = z1 - 1.0
    assert math.isclose(float(loss), (l0 + l1) / 2, rel_tol=1e-5)
