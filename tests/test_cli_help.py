"""`qa <command> --help` says what the command really does."""

from __future__ import annotations

import pytest

from qa.cli import main
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
