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


@pytest.mark.parametrize("name, value, says", [
    ("QA_CHUNK_TOKENS", "0", "greater than or equal to 3"),
    ("QA_CHUNK_OVERLAP", "-1", "greater than or equal to 0"),
    ("QA_CHUNK_OVERLAP", "500", "must be less than QA_CHUNK_TOKENS (200)"),
    ("QA_EMBEDDING_BATCH_SIZE", "0", "greater than or equal to 1"),
    ("QA_HNSW_M", "1", "greater than or equal to 2"),  # faiss aborts the whole process (no exception) below 2
    ("QA_RRF_K", "-60", "greater than or equal to 0"),
    ("QA_READER_MAX_LENGTH", "10", "greater than 67"),
    ("QA_READER_MAX_LENGTH", "100000", "less than or equal to 512"),
    ("QA_READER_STRIDE", "-1", "greater than or equal to 0"),
    ("QA_READER_STRIDE", "1000", "must be less than QA_READER_MAX_LENGTH (256)"),
    ("QA_READER_MAX_ANSWER_TOKENS", "0", "greater than or equal to 1"),
    ("QA_READER_N_BEST", "0", "greater than or equal to 1"),
    ("QA_ABSTAIN_THRESHOLD", "-1", "greater than or equal to 0"),
    ("QA_PORT", "70000", "less than or equal to 65535"),
    ("QA_PORT", "-1", "greater than or equal to 1"),
])
def test_values_that_failed_later_with_a_traceback_are_refused_by_name(monkeypatch, name, value, says):
    """Each of these passed the settings and then raised deep inside (a ValueError of the chunker, the
    tokenizer or sentence-transformers, OverflowError from bind(), a faiss abort): now `qa` says which
    variable is wrong in one line."""
    from qa.config import SettingsError, get_settings

    monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    try:
        with pytest.raises(SettingsError) as e:
            get_settings()
    finally:
        get_settings.cache_clear()
    assert f"{name}={value!r}: " in str(e.value) and says in str(e.value), str(e.value)
    assert "Value error" not in str(e.value)


def test_every_setting_is_documented_with_its_default():
    """docs/configuration.md names every Settings field as QA_<NAME>, and the simple defaults it states are
    the code's."""
    import re

    doc = (PROJECT_ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    missing = [n for n in Settings.model_fields if f"QA_{n.upper()}" not in doc]
    assert not missing, f"not in docs/configuration.md: {missing}"
    for row in re.findall(r"^\| `(QA_[A-Z0-9_]+)` \| ([^|]+) \|", doc, flags=re.M):
        name, default = row[0][3:].lower(), row[1].strip().strip("`")
        code = Settings.model_fields[name].default if name in Settings.model_fields else None
        if isinstance(code, (bool, int, float, str)) and re.fullmatch(r"-?[0-9.]+|true|false|[a-z0-9-]+", default):
            shown = str(code).lower() if isinstance(code, bool) else str(code)
            assert default in (shown, shown.removesuffix(".0")), (name, default, code)


def test_chunks_longer_than_the_embedder_reads_are_refused(tmp_path, capsys):
    """QA_CHUNK_TOKENS had no upper bound: chunks past the embedding model's 256 tokens (254 of text) were indexed
    and silently cut when embedded, so dense retrieval never saw their tails. Now `qa` says the bound in one line."""
    from qa.chunking import Chunker
    from qa.cli import main
    from qa.config import SettingsError, get_settings

    assert Chunker(chunk_tokens=254, chunk_overlap=50).chunk_tokens == 254
    with pytest.raises(SettingsError, match=r"QA_CHUNK_TOKENS \(255\) .* at most 254"):
        Chunker(chunk_tokens=255, chunk_overlap=50)
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "a.txt").write_text("Puffins nest on cliffs.")
    env = {"QA_CORPUS_DIR": str(tmp_path / "corpus"), "QA_INDEX_DIR": str(tmp_path / "index"), "QA_CHUNK_TOKENS": "300"}
    with pytest.MonkeyPatch.context() as m:
        for k, v in env.items():
            m.setenv(k, v)
        get_settings.cache_clear()
        try:
            assert main(["index"]) != 0
        finally:
            get_settings.cache_clear()
    err = capsys.readouterr().err
    assert err.strip().splitlines() == ["qa: error: QA_CHUNK_TOKENS (300) is more than the embedding model reads "
                                        "(254 tokens of text per chunk): set QA_CHUNK_TOKENS to at most 254"], err
    assert not (tmp_path / "index" / "CURRENT").exists()
