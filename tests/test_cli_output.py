"""The ``qa`` command line's output conventions, whatever the command: a closed stdout is no error."""

from __future__ import annotations

import os
import subprocess
import sys

from qa.config import PROJECT_ROOT


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
