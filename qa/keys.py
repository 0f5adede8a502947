"""API keys with scopes, stored hashed in one JSON file (``Settings.resolved_keys_file()``).

    store = KeyStore(path); key = store.add("ci-bot", "write")   # the key is shown once
    store.verify(key)  -> KeyRecord(name="ci-bot", scope="write", ...) or None
    store.revoke("ci-bot")

A key is ``qa_`` + 43 URL-safe characters (32 random bytes). The file holds only the SHA-256 of
each key: keys are random, not passwords, so a fast hash is enough (nothing to brute-force) and
verification stays cheap on every request. Writes are atomic (temp file + ``os.replace``, mode
0600) and serialised with ``flock``; readers re-read the file when it changes, so ``qa keys
revoke`` takes effect on a running server without a restart.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import stat
import threading
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator, Literal

logger = logging.getLogger(__name__)

Scope = Literal["read", "write"]
SCOPES: tuple[str, ...] = ("read", "write")
KEY_PREFIX = "qa_"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class KeyStoreError(ValueError):
    """A key operation is refused (bad name or scope, duplicate, unknown name)."""


@dataclass(frozen=True)
class KeyRecord:
    name: str
    scope: str
    sha256: str
    created_at: str
    hint: str  # the key's first characters, to tell keys apart in `qa keys list`

    def allows(self, needed: str) -> bool:
        return self.scope == "write" or needed == "read"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def _key_list(data: object) -> list:
    if not isinstance(data, dict) or not isinstance(data.get("keys", []), list):
        raise ValueError('not an object with a "keys" list')
    return data.get("keys", [])


def _record(k: object) -> KeyRecord:
    """One entry of the key file, checked: valid JSON of another shape must not reach the code that trusts it."""
    if not isinstance(k, dict) or set(k) != {f.name for f in fields(KeyRecord)}:
        raise ValueError("a key entry is not an object with exactly the fields of a key")
    if not all(isinstance(v, str) for v in k.values()):
        raise ValueError("a key entry has a field that is not a string")
    if k["scope"] not in SCOPES or not re.fullmatch(r"[0-9a-f]{64}", k["sha256"]):
        raise ValueError("a key entry has an unknown scope or a malformed hash")
    return KeyRecord(**k)


class KeyStore:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._cache: tuple[tuple[int, int, int], list[KeyRecord]] | None = None
        self._lock = threading.Lock()
        self._logged: tuple[int, int, int] | None = None  # the stamp of the unreadable file last logged

    # ------------------------------------------------------------ reading
    def _stamp(self) -> tuple[int, int, int] | None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def records(self) -> list[KeyRecord]:
        """Every key (re-read when the file changed on disk)."""
        with self._lock:
            stamp = self._stamp()
            if stamp is None:
                self._cache = None
                return []
            if self._cache is not None and self._cache[0] == stamp:
                return self._cache[1]
            records = self._read()
            self._cache = (stamp, records)
            return records

    def _text(self) -> str:
        """The file's text; opened without blocking and checked to be a file: a FIFO in its place used to hang
        every `qa keys` command and every request that looked at the keys (``/ready`` the whole server)."""
        fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise KeyStoreError(f"the key file {self.path.name} is not a regular file (a FIFO, a device...); "
                                    "remove it, then add keys with `qa keys add`")
            return f.read().decode("utf-8")

    def _read(self) -> list[KeyRecord]:
        try:
            data = json.loads(self._text())
            return [_record(k) for k in _key_list(data)]
        except FileNotFoundError:
            return []
        except KeyStoreError:
            raise
        except (OSError, ValueError, TypeError, AttributeError) as e:
            # A damaged key file must not silently open the server: refuse every key instead.
            raise KeyStoreError(f"the key file {self.path.name} is unreadable ({type(e).__name__}); "
                            "fix or remove it, then add keys again with `qa keys add`") from None

    def _refused(self, e: KeyStoreError) -> None:
        """Say in the server's log, once per version of the file, why every key is refused (clients only see
        401 invalid_key)."""
        stamp = self._stamp()
        if stamp is not None and stamp != self._logged:
            self._logged = stamp
            logger.error("%s; until then every API key is refused", e)

    def problem(self) -> str | None:
        """Why every key is refused (the key file is unreadable), or None."""
        try:
            self.records()
        except KeyStoreError as e:
            return str(e)
        return None

    def configured(self) -> bool:
        """True when at least one key exists (or the file exists but is unreadable: fail closed)."""
        try:
            return bool(self.records())
        except KeyStoreError as e:
            self._refused(e)
            return True

    def verify(self, key: str | None) -> KeyRecord | None:
        if not key or not key.startswith(KEY_PREFIX):
            return None
        digest = hash_key(key)
        try:
            records = self.records()
        except KeyStoreError as e:
            self._refused(e)
            return None
        found = None
        for r in records:  # compare against every record: no early exit on a match
            if hmac.compare_digest(r.sha256, digest):
                found = r
        return found

    # ------------------------------------------------------------ writing
    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fh = open(self.path.with_name(self.path.name + ".lock"), "a+")
        except OSError as e:  # a folder above it is a file, a read-only or missing mount...
            raise self._unwritable(e) from None
        with fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _unwritable(self, e: OSError) -> KeyStoreError:
        why = ("a folder above it is a file" if isinstance(e, (FileExistsError, NotADirectoryError))
               else e.strerror or type(e).__name__)
        return KeyStoreError(f"cannot write the key file {self.path} ({why}); set QA_KEYS_FILE to a file in a "
                             "folder you can write")

    def _write(self, records: list[KeyRecord]) -> None:
        tmp = self.path.with_name(f".{self.path.name}.{secrets.token_hex(4)}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump({"keys": [asdict(r) for r in records]}, f, indent=2)
                f.write("\n")
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except OSError as e:  # a full disk, a read-only folder
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise self._unwritable(e) from None

    def add(self, name: str, scope: str) -> str:
        """Create a key; returns it (the only time it is ever shown)."""
        if not _NAME.match(name or ""):
            raise KeyStoreError("a key name is 1-64 ASCII letters (a-z, A-Z), digits, '_', '.' or '-', starting with a "
                                "letter or digit, e.g. ci-bot")
        if scope not in SCOPES:
            raise KeyStoreError(f"scope must be one of {', '.join(SCOPES)}")
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        with self._locked():
            records = self._read()
            if any(r.name == name for r in records):
                raise KeyStoreError(f"a key named {name!r} exists; revoke it first or pick another name")
            records.append(KeyRecord(name=name, scope=scope, sha256=hash_key(key),
                                     created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                                     hint=key[:7]))
            self._write(records)
        return key

    def revoke(self, name: str) -> None:
        with self._locked():
            records = self._read()
            if not any(r.name == name for r in records):
                raise KeyStoreError(f"no key named {name!r}")
            self._write([r for r in records if r.name != name])
