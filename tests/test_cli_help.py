"""`qa <command> --help` and its refusals say what the command really does and accepts."""

from __future__ import annotations

import pytest

from qa.cli import main
from qa.config import get_settings
from qa.ingest import SUPPORTED_SUFFIXES


def _help(capsys, command: str) -> str:
    with pytest.raises(SystemExit) as stop:
        main([command, "--help"])
    assert stop.value.code == 0
    return " ".join(capsys.readouterr().out.split())  # argparse wraps lines


def test_index_help_names_every_supported_file_type(capsys):
    text = _help(capsys, "index")  # was: "Index .txt/.md documents", while PDF, DOCX and HTML are indexed too
    for suffix in SUPPORTED_SUFFIXES:
        assert suffix in text, (suffix, text)


def test_ask_help_says_offsets_are_into_the_served_text(capsys):
    text = _help(capsys, "ask")  # was: only open(file).read()[start:end], false for a PDF, DOCX or HTML file
    assert "GET /documents/{id}" in text and "extracted" in text, text


def test_a_refused_key_name_says_which_letters(tmp_path, monkeypatch, capsys):
    # was: "1-64 letters, digits, ..." while "ünï", letters all, is refused: only ASCII ones are allowed
    monkeypatch.setenv("QA_KEYS_FILE", str(tmp_path / "keys.json"))
    get_settings.cache_clear()
    try:
        assert main(["keys", "add", "ünï", "--scope", "read"]) == 1
    finally:
        get_settings.cache_clear()
    err = capsys.readouterr().err
    assert err.startswith("qa: error: ") and "ASCII letters" in err and err.count("\n") == 1, err
