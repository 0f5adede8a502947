"""Settings from the environment: empty variables are unset, bad values say which variable."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from qa.config import PROJECT_ROOT, Settings


def test_an_empty_variable_counts_as_unset(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    for name in ("QA_INDEX_DIR", "QA_CORPUS_DIR", "QA_READER_TOKEN_KEEP", "QA_TOP_K", "QA_MIN_CONFIDENCE",
                 "QA_EMBEDDING_MODEL", "QA_MILVUS_COLLECTION"):
        monkeypatch.setenv(name, "")
    s = Settings()
    default = Settings.model_fields
    assert s.index_dir == PROJECT_ROOT / "index" and s.corpus_dir == PROJECT_ROOT / "seeds"  # not the cwd
    assert s.reader_token_keep is None and s.top_k == default["top_k"].default
    assert s.min_confidence == default["min_confidence"].default and s.embedding_model is None
    assert s.milvus_collection == "qa"


def test_a_set_variable_is_used_and_a_bad_one_names_itself(monkeypatch, tmp_path):
    monkeypatch.setenv("QA_INDEX_DIR", str(tmp_path / "idx"))
    monkeypatch.setenv("QA_READER_TOKEN_KEEP", "0.5")
    s = Settings()
    assert s.index_dir == tmp_path / "idx" and s.reader_token_keep == 0.5
    monkeypatch.setenv("QA_READER_TOKEN_KEEP", "1.5")
    with pytest.raises(ValidationError, match="reader_token_keep"):
        Settings()
