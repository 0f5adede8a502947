"""`qa restore`'s options: a combination that cannot mean anything is refused, not half-ignored."""

from __future__ import annotations

import pytest

from qa.cli import main


@pytest.mark.parametrize("args, says", [
    (["--entry", "20261208T024041554309-299673"], "--entry needs the document id"),  # was: listed the trash, exit 0
    (["--list", "report.pdf"], "--list takes no document id"),  # was: listed, the id ignored
    (["--list", "--entry", "20261208T024041554309-299673"], "--list takes no document id or --entry"),
])
def test_restore_options_that_do_not_go_together_are_one_line_errors(empty_qa_folders, capsys, args, says):
    assert main(["restore", *args]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("qa: error: ") and says in err and err.count("\n") == 1, (out, err)


def test_restore_list_alone_still_lists(empty_qa_folders, capsys):
    assert main(["restore", "--list"]) == 0
    assert capsys.readouterr().out == "The trash is empty.\n"
