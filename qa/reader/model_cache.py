"""A model file built once per machine and kept in a cache folder (the int8 and OpenVINO readers)."""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)


def cached_build(target: Path, build: Callable[[Path], Path], what: str, setting: str) -> Path:
    """``target`` if it exists; else ``build(tmp_folder) -> built file``, moved to ``target`` atomically (concurrent
    builders end with one complete file). When ``target``'s folder cannot be written, the file is built into a
    temporary folder for this process and a warning names ``setting``, the variable that moves the cache."""
    if target.is_file():
        return target
    cache = target.parent
    try:
        cache.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=cache, delete=True)
        probe.close()
    except OSError as exc:
        cache = Path(tempfile.mkdtemp(prefix="qa-model-cache-"))
        log.warning("%s cache folder not writable (%s); building into %s for this process "
                    "(set %s to a writable folder to keep it)", what, exc, cache, setting)
        target = cache / target.name
    with tempfile.TemporaryDirectory(prefix="qa-build-") as tmp:
        built = build(Path(tmp))
        partial = cache / f".{target.name}.{os.getpid()}.tmp"
        partial.write_bytes(built.read_bytes())
        os.replace(partial, target)
    return target
