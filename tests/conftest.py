"""Shared fixtures. Models load at most once per session.

* ``model_path`` / ``tokenizer`` / ``chunker``: the bundled MiniLM tokenizer, default chunking.
* ``embedder``: a warmed-up :class:`qa.embedding.Embedder` (session).
* ``tmp_corpus``: factory ``tmp_corpus({"a.txt": "text", "sub/b.md": b"raw bytes"}) -> Path``.
* ``seed_settings`` / ``seed_index``: an index of ``seeds/`` built once into a temp dir (session);
  ``seed_index`` is the loaded :class:`qa.index_store.IndexStore`. Treat it as read-only.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from pathlib import Path  # noqa: E402
from typing import Callable  # noqa: E402

import pytest  # noqa: E402

from qa.config import PROJECT_ROOT, Settings, default_embedding_model  # noqa: E402

SEEDS_DIR = PROJECT_ROOT / "seeds"


@pytest.fixture(scope="session")
def model_path() -> str:
    return default_embedding_model()


@pytest.fixture(scope="session")
def tokenizer(model_path):
    from qa.chunking import load_tokenizer

    return load_tokenizer(model_path)


@pytest.fixture(scope="session")
def chunker(tokenizer):
    from qa.chunking import Chunker

    return Chunker(tokenizer=tokenizer)


@pytest.fixture(scope="session")
def embedder(model_path):
    from qa.embedding import get_embedder

    # The process-wide shared instance: in-process CLI/API calls reuse the loaded model.
    return get_embedder(model_path, Settings().embedding_batch_size).warm_up()


@pytest.fixture
def tmp_corpus(tmp_path) -> Callable[..., Path]:
    """Factory: write files (str -> UTF-8 text written byte-exact, bytes -> raw) into a new folder."""
    counter = {"n": 0}

    def make(files: dict[str, str | bytes], name: str | None = None) -> Path:
        counter["n"] += 1
        root = tmp_path / (name or f"corpus{counter['n']}")
        root.mkdir(parents=True, exist_ok=True)
        for rel, content in files.items():
            p = root / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
        return root

    return make


@pytest.fixture
def empty_qa_folders(tmp_path, monkeypatch) -> Path:
    """QA_INDEX_DIR and QA_CORPUS_DIR pointing into an empty tmp_path (nothing there yet), the settings cache
    cleared around the test, for `qa` commands run in-process through qa.cli.main."""
    from qa.config import get_settings

    monkeypatch.setenv("QA_INDEX_DIR", str(tmp_path / "index"))
    monkeypatch.setenv("QA_CORPUS_DIR", str(tmp_path / "corpus"))
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def seed_settings(tmp_path_factory) -> Settings:
    index_dir = tmp_path_factory.mktemp("seed_index") / "index"
    return Settings(corpus_dir=SEEDS_DIR, index_dir=index_dir)


@pytest.fixture(scope="session")
def seed_index(seed_settings, embedder, chunker):
    from qa.index_store import IndexStore

    return IndexStore.build_or_update(seed_settings.corpus_dir, seed_settings, embedder, chunker)


@pytest.fixture(scope="session")
def shipped_fp32_reader():
    """The shipped reader on PyTorch in fp32, every token through every layer (no token pruning): the reference the
    other runtimes (int8, OpenVINO) are compared with."""
    from qa.reader.reader import ExtractiveReader
    from shipped import SHIPPED

    r = ExtractiveReader(SHIPPED, precision="fp32", token_keep=1.0)
    r.warm_up()
    return r
