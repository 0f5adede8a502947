"""What the ``qa`` commands print, on any stdout: text that never fails on a character the terminal's encoding
lacks (a non-UTF-8 locale such as ISO-8859-1, or ``PYTHONIOENCODING=ascii``), and JSON that stays valid there.

With ``LC_ALL=C`` Python already writes UTF-8 (its UTF-8 mode); these matter for the other encodings, where a
document id or an answer with ``é`` or ``ü`` used to end the command with a UnicodeEncodeError traceback.
"""

from __future__ import annotations

import codecs
import json
import sys
from typing import Any

_UNICODE_ENCODINGS = {"utf-8", "utf-8-sig", "utf-16", "utf-32", "gb18030"}


def stdout_is_unicode() -> bool:
    """Whether stdout can encode every character."""
    try:
        return codecs.lookup(getattr(sys.stdout, "encoding", None) or "utf-8").name in _UNICODE_ENCODINGS
    except LookupError:
        return False


def tolerate_unencodable_text() -> None:
    """A character stdout cannot encode is written as an escape (``\\xe9``) instead of failing the command."""
    reconfigure = getattr(sys.stdout, "reconfigure", None)
    if reconfigure is not None and not stdout_is_unicode():
        reconfigure(errors="backslashreplace")


def print_json(obj: Any, **dumps_options: Any) -> None:
    """``obj`` as indented JSON on stdout: characters as they are, or as JSON escapes (``\\u00e9``) where stdout
    cannot encode them, so that the output is valid JSON with the same strings either way."""
    print(json.dumps(obj, indent=2, ensure_ascii=not stdout_is_unicode(), **dumps_options))
