"""The ``qa`` command line's output conventions, whatever the command: a closed stdout is no error, and a stdout
that cannot encode every character (a non-UTF-8 locale) neither fails a command nor makes its JSON invalid."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import pytest

from qa.cli import main
from qa.config import PROJECT_ROOT, get_settings
from qa.console import print_json


def _qa_into_closed_pipe(args: list[str], tmp_path) -> subprocess.CompletedProcess:
    """Run ``qa ARGS`` with a stdout whose reader has gone, as in ``qa ... | head -c 10``."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "QA_INDEX_DIR": str(tmp_path / "index"),
           "QA_KEYS_FILE": str(tmp_path / "keys.json")}
    try:
        return subprocess.run([sys.executable, "-m", "qa.cli", *args], stdout=write_end, stderr=subprocess.PIPE,
                              text=True, env=env, cwd=tmp_path, timeout=120)
    finally:
        os.close(write_end)


def test_a_closed_stdout_ends_quietly_with_exit_141(tmp_path):
    # was: a BrokenPipeError traceback (or "Exception ignored ... BrokenPipeError") on stderr, exit 1 or 120
    out = _qa_into_closed_pipe(["keys", "add", "ci", "--scope", "read"], tmp_path)
    assert out.returncode == 141, (out.returncode, out.stderr)  # 128 + SIGPIPE, what a shell shows for `head`
    assert out.stderr == "", out.stderr
    assert (tmp_path / "keys.json").is_file()  # the command itself ran to its end


def test_text_a_stdout_cannot_encode_is_escaped_not_a_traceback(tmp_path):
    # was: UnicodeEncodeError traceback, exit 1 (`qa ask` died the same way on a cited document "ünï.txt")
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "PYTHONIOENCODING": "ascii",
           "QA_INDEX_DIR": str(tmp_path / "index"), "QA_KEYS_FILE": str(tmp_path / "clés.json")}
    out = subprocess.run([sys.executable, "-m", "qa.cli", "keys", "list"], capture_output=True, text=True, env=env,
                         cwd=tmp_path, timeout=120)
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr
    assert out.stdout.strip().endswith("cl\\xe9s.json."), out.stdout


def test_json_on_a_stdout_that_cannot_encode_is_valid_and_keeps_the_strings(monkeypatch):
    row = {"document": "ünï cödé.txt", "text": "Алматы 🔥 «quoted»"}
    ascii_out = io.TextIOWrapper(io.BytesIO(), encoding="ascii", errors="backslashreplace")  # qa's reconfigured
    monkeypatch.setattr(sys, "stdout", ascii_out)
    print_json([row])
    ascii_out.flush()
    assert json.loads(ascii_out.buffer.getvalue().decode("ascii")) == [row]
    utf8_out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    monkeypatch.setattr(sys, "stdout", utf8_out)
    print_json([row])
    utf8_out.flush()
    assert "ünï cödé.txt" in utf8_out.buffer.getvalue().decode("utf-8")  # readable where it can be


@pytest.mark.parametrize("args, code, says", [
    (["index", "nosuch.txt"], 1, "no such file or folder: nosuch.txt"),
    (["index"], 1, "corpus folder not found"),
    (["index", "--check"], 2, "no readable index"),
    (["index", "--ray", "--ray-cpus", "0"], 1, "--ray"),
])
def test_index_mistakes_are_one_line_starting_qa_error(tmp_path, monkeypatch, capsys, args, code, says):
    # was: "qa: no such file or folder: ..." and the like, unlike every other command's "qa: error: ..."
    (tmp_path / "corpus").mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("QA_INDEX_DIR", str(tmp_path / "index"))
    monkeypatch.setenv("QA_CORPUS_DIR", str(tmp_path / ("corpus" if args != ["index"] else "no-such-corpus")))
    get_settings.cache_clear()
    try:
        assert main(args) == code
    finally:
        get_settings.cache_clear()
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("qa: error: ") and says in err and err.count("\n") == 1, err
