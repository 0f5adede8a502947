"""Questions `qa ask` / `qa search` refuse before any model loads: one line, `qa: error:`, exit 1."""

from __future__ import annotations

import pytest

from qa.cli import main


@pytest.mark.parametrize("command", ["ask", "search"])
def test_a_question_of_bytes_that_are_not_utf8_is_a_one_line_error(empty_qa_folders, capsys, command):
    # `qa ask $'caf\xe9?'` from a Latin-1 terminal: Python's argv holds a lone surrogate, "caf\udce9?"
    # (was: the models loaded, then a TypeError traceback from the tokenizer, exit 1)
    assert main([command, "When did the caf\udce9 open?"]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("qa: error: ") and "not UTF-8" in err and err.count("\n") == 1, err
    assert not (empty_qa_folders / "index").exists()  # refused before anything loaded or was built
