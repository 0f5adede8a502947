"""Read a UTF-8 input file (an evaluation set, a SQuAD file) with one-line errors that name it."""

from __future__ import annotations

from pathlib import Path


def read_utf8(path: Path, kind: str, error: type[Exception]) -> str:
    """The text of ``path`` (``kind``: what it should be, e.g. "a SQuAD file"). ``error`` with one line naming the
    path for a folder, a missing or unreadable file, or bytes that are not UTF-8 (with the line number, counted
    as text-mode reading splits lines: ``\\n``, ``\\r\\n``, ``\\r``)."""
    if path.is_dir():
        raise error(f"{path}: is a directory, not {kind}")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise error(f"{path}: not found (expected {kind})") from None
    except OSError as exc:
        raise error(f"{path}: cannot be read: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = data[: exc.start].decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")
        raise error(f"{path}:{before.count(chr(10)) + 1}: not valid UTF-8") from None
