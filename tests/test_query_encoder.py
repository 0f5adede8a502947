"""The direct query walk (qa.query_encoder) gives encode()'s vectors, and anything it does not match keeps encode()."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qa.embedding import Embedder
from qa.query_encoder import QueryEncoder

TEXTS = [
    "Who is the first president of Kazakhstan?",
    "HOW MANY security forces were killed?",
    "",
    "   ",
    "Ünïcödé — “quotes”, emoji 🙂 and 中文",
    "token " * 400,  # longer than the model's 256 tokens: both truncate
]


@pytest.fixture(scope="module")
def fp32_embedder(model_path):
    """Question embeddings in fp32 (the int8 ones are qa.query_int8's, tested in test_query_int8.py)."""
    return Embedder(model_path, query_precision="fp32").warm_up()


def _reference(embedder: Embedder, text: str) -> np.ndarray:
    return embedder._encode(embedder.model, [text])[0]


def test_the_shared_embedder_uses_the_direct_walk(embedder, fp32_embedder):
    assert isinstance(embedder._query_encoder, QueryEncoder)
    assert isinstance(fp32_embedder._query_encoder, QueryEncoder) and fp32_embedder.query_runtime == "fp32"


def test_direct_query_vectors_equal_encodes(fp32_embedder):
    embedder = fp32_embedder
    for text in TEXTS:
        got = embedder.embed_query(text)
        assert got.dtype == np.float32 and got.shape == (embedder.dimension,)
        assert np.abs(got - _reference(embedder, text)).max() < 1e-5, text
        assert abs(float(np.linalg.norm(got)) - 1.0) < 1e-5


@settings(max_examples=25, deadline=None)
@given(st.text(min_size=0, max_size=200))
def test_direct_query_vectors_equal_encodes_property(fp32_embedder, text):
    assert np.abs(fp32_embedder.embed_query(text) - _reference(fp32_embedder, text)).max() < 1e-5


def test_a_walk_that_differs_keeps_encode(model_path, monkeypatch, caplog):
    real = QueryEncoder.encode
    monkeypatch.setattr(QueryEncoder, "encode", lambda self, text: real(self, text) * 0.5)
    with caplog.at_level(logging.WARNING, logger="qa.embedding"):
        emb = Embedder(model_path).warm_up()
    assert emb._query_encoder is None
    assert "differs" in caplog.text
    q = "Who are the peacekeepers sent by?"
    assert np.array_equal(emb.embed_query(q), emb.embed_documents([q])[0])


def test_a_model_without_the_layout_keeps_encode(model_path, monkeypatch):
    monkeypatch.setattr(QueryEncoder, "supports", staticmethod(lambda model: False))
    emb = Embedder(model_path).warm_up()
    assert emb._query_encoder is None
    assert np.abs(np.linalg.norm(emb.embed_query("a question")) - 1.0) < 1e-5


def test_supports_refuses_other_objects():
    assert not QueryEncoder.supports(object())
    assert not QueryEncoder.supports([])
