"""Who may do what over HTTP: the API-key matrix, read-only mode, the Host allow-list, the
Origin check, and `qa keys`. Runs the real write path with small stand-in models
(tests/lite_pipeline.py) on a temporary copy of seeds/."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from lite_pipeline import LitePipeline, lite_settings
from qa.config import PROJECT_ROOT
from qa.keys import KeyStore, KeyStoreError

SEEDS = PROJECT_ROOT / "seeds"
DOC = "000_4741fbb5b5543d86.txt"


def make(tmp_path: Path, **overrides):
    corpus = tmp_path / "corpus"
    if not corpus.exists():
        shutil.copytree(SEEDS, corpus)
    overrides.setdefault("allowed_hosts", "testserver")
    s = lite_settings(corpus, tmp_path / "index", reload_interval_s=0, **overrides)
    return s, TestClient(create_app(s, LitePipeline(s), background_warm_up=False))


def corpus_files(s) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in Path(s.corpus_dir).iterdir() if p.is_file()}


def bearer(key: str | None) -> dict:
    return {"Authorization": f"Bearer {key}"} if key else {}


def write_requests(doc_id: str) -> list[tuple[str, str, dict]]:
    """(method, url, kwargs) of every write, each valid apart from authorisation."""
    return [
        ("POST", "/documents", {"files": [("files", ("new-doc.txt", b"A new document about owls.", "text/plain"))]}),
        ("PUT", f"/documents/{doc_id}", {"content": b"Replaced text.", "headers": {"If-Match": "*"}}),
        ("DELETE", f"/documents/{doc_id}", {}),
        ("POST", f"/documents/{doc_id}/restore", {}),
    ]


READS = [("POST", "/ask", {"json": {"question": "When did the protests in Kazakhstan begin?"}}),
         ("GET", "/documents", {}), ("GET", f"/documents/{DOC}", {}), ("GET", "/trash", {})]


@pytest.fixture
def keyed(tmp_path):
    s, client = make(tmp_path)
    keys = KeyStore(s.resolved_keys_file())
    return s, client, keys.add("reader", "read"), keys.add("writer", "write")


def call(client, method, url, kwargs, key=None):
    kw = dict(kwargs)
    kw["headers"] = {**kw.get("headers", {}), **bearer(key)}
    return client.request(method, url, **kw)


def test_without_keys_on_loopback_everything_is_open(tmp_path):
    s, client = make(tmp_path)
    with client:
        for method, url, kw in READS:
            assert call(client, method, url, kw).status_code == 200, url
        r = call(client, *write_requests(DOC)[0])
        assert r.status_code == 201, r.text


@pytest.mark.parametrize("i", range(4), ids=["upload", "replace", "delete", "restore"])
def test_writes_need_a_write_key(keyed, i):
    s, client, read_key, write_key = keyed
    with client:
        before = corpus_files(s)
        method, url, kw = write_requests(DOC)[i]
        r = call(client, method, url, kw)
        assert r.status_code == 401 and r.json()["error"] == "auth_required", r.text
        assert r.headers["www-authenticate"].startswith("Bearer")
        r = call(client, method, url, kw, key="qa_not-a-real-key")
        assert r.status_code == 401 and r.json()["error"] == "invalid_key"
        r = call(client, method, url, kw, key=read_key)
        assert r.status_code == 403 and r.json()["error"] == "forbidden" and "read" in r.json()["message"]
        assert corpus_files(s) == before  # nothing happened
        if i == 3:  # restore needs something in the trash
            assert call(client, "DELETE", f"/documents/{DOC}", {}, key=write_key).status_code == 200
        r = call(client, method, url, kw, key=write_key)
        assert r.status_code in (200, 201), r.text


def multipart_upload(name: str, megabytes: int, consumed: list[int]):
    """(content, headers) of a streamed one-file upload; ``consumed[0]`` counts the bytes the server read."""
    def body():
        yield f'--B\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n\r\n'.encode()
        for _ in range(megabytes):
            consumed[0] += 1 << 20
            yield b"o" * (1 << 20)
        yield b"\r\n--B--\r\n"
    return body(), {"Content-Type": "multipart/form-data; boundary=B"}


@pytest.mark.parametrize("who", ["no key", "read key", "read-only server", "other site"])
def test_a_refused_upload_is_refused_before_its_body_is_read(tmp_path, who):
    """FastAPI parses a route's multipart body before its dependencies run: a client without a write key made
    the server take in (and spool to disk) every byte of a 20-file upload before answering 401/403."""
    s, client = make(tmp_path, **({"host": "0.0.0.0"} if who == "read-only server" else {}))
    keys = KeyStore(s.resolved_keys_file())
    headers = {"read key": bearer(keys.add("reader", "read")) if who == "read key" else {},
               "other site": {"Origin": "http://evil.example"}}.get(who, {})
    if who == "no key":
        keys.add("writer", "write")
    consumed = [0]
    content, mp = multipart_upload("big.txt", 8, consumed)
    with client:
        r = client.post("/documents", content=content, headers={**mp, **headers})
        assert r.status_code in (401, 403), r.text
        assert consumed[0] <= 1 << 20, consumed  # the body was not read (it was, all 8 MB of it)
        assert r.headers["connection"] == "close"  # nor will it be: uvicorn would read and drop it
        assert "big.txt" not in corpus_files(s)


def test_reads_are_open_unless_configured(keyed, tmp_path):
    s, client, read_key, write_key = keyed
    with client:
        for method, url, kw in READS:
            assert call(client, method, url, kw).status_code == 200
    s2, client2 = make(tmp_path, require_key_for_reads=True)
    with client2:
        for method, url, kw in READS:
            r = call(client2, method, url, kw)
            assert r.status_code == 401, (url, r.text)
            assert call(client2, method, url, kw, key="qa_wrong").status_code == 401
            assert call(client2, method, url, kw, key=read_key).status_code == 200
            assert call(client2, method, url, kw, key=write_key).status_code == 200
        # liveness, readiness and the page stay open: the page must load to ask for a key
        for url in ("/health", "/ready", "/", "/static/app.js", "/openapi.json"):
            assert client2.get(url).status_code == 200, url


def test_revoked_key_stops_working_on_a_running_server(keyed):
    s, client, _read_key, write_key = keyed
    with client:
        assert call(client, "GET", "/documents", {}, key=write_key).status_code == 200
        KeyStore(s.resolved_keys_file()).revoke("writer")
        r = call(client, *write_requests(DOC)[2], key=write_key)
        assert r.status_code == 401 and DOC in corpus_files(s)


def test_unreadable_key_file_refuses_every_write(tmp_path, caplog):
    """... and says so, at start-up and in the log (every client got 401 invalid_key and nothing said why)."""
    from api.serve import banner

    s, client = make(tmp_path)
    s.resolved_keys_file().write_text("{not json", encoding="utf-8")
    assert "every key is refused: the key file qa-keys.json is unreadable" in "\n".join(banner(s))
    caplog.clear()
    with client, caplog.at_level("ERROR", logger="qa.keys"):
        for _ in range(3):
            r = call(client, *write_requests(DOC)[2], key="qa_some-key")
            assert r.status_code == 401 and DOC in corpus_files(s)
    logged = [r.getMessage() for r in caplog.records if "every API key is refused" in r.getMessage()]
    assert len(logged) == 1 and "qa-keys.json is unreadable" in logged[0], logged  # once, not per request


@pytest.mark.parametrize("content", [
    "[]", '{"keys": {}}', '{"keys": ["x"]}',
    '{"keys": [{"name": "a", "scope": "write", "sha256": 5, "created_at": "", "hint": ""}]}',
    '{"keys": [{"name": "a", "scope": "admin", "sha256": "' + "0" * 64 + '", "created_at": "", "hint": ""}]}',
])
def test_a_key_file_of_another_shape_refuses_every_write_and_says_so(tmp_path, content):
    """Valid JSON that is not a key file fails closed like unreadable JSON does (it used to answer 500)."""
    s, client = make(tmp_path)
    s.resolved_keys_file().write_text(content, encoding="utf-8")
    with client:
        r = call(client, *write_requests(DOC)[2])
        assert r.status_code == 401 and DOC in corpus_files(s)
        assert client.get("/ready").status_code in (200, 503)
    with pytest.raises(KeyStoreError, match="unreadable"):
        KeyStore(s.resolved_keys_file()).records()


def test_non_loopback_without_keys_is_read_only(tmp_path):
    s, client = make(tmp_path, host="0.0.0.0")
    with client:
        before = corpus_files(s)
        for method, url, kw in write_requests(DOC):
            r = call(client, method, url, kw)
            assert r.status_code == 403 and r.json()["error"] == "read_only", r.text
            assert "qa keys add" in r.json()["message"]
        assert corpus_files(s) == before
        for method, url, kw in READS:
            assert call(client, method, url, kw).status_code == 200
        # once a write key exists, writes with it work (and without it do not)
        key = KeyStore(s.resolved_keys_file()).add("admin", "write")
        assert call(client, *write_requests(DOC)[0]).status_code == 401
        assert call(client, *write_requests(DOC)[0], key=key).status_code == 201


@pytest.mark.parametrize("header", ["X-Forwarded-For", "Forwarded", "X-Forwarded-Host", "X-Real-IP"])
def test_requests_through_a_proxy_are_read_only_without_keys(tmp_path, header):
    """A reverse proxy on this machine makes every client look local: bound to 127.0.0.1 with no keys, a
    request carrying the proxy's headers was a write open to anyone who reached the proxy."""
    s, client = make(tmp_path)
    proxy = {header: "for=203.0.113.7" if header == "Forwarded" else "203.0.113.7"}
    with client:
        before = corpus_files(s)
        for method, url, kw in write_requests(DOC):
            r = call(client, method, url, {**kw, "headers": {**kw.get("headers", {}), **proxy}})
            assert r.status_code == 403 and r.json()["error"] == "read_only", r.text
            assert "proxy" in r.json()["message"] and "qa keys add" in r.json()["message"]
        assert corpus_files(s) == before
        assert client.get("/ready", headers=proxy).json()["writes"] == "read_only"
        assert client.get("/ready").json()["writes"] == "open"
        assert call(client, *READS[0]).status_code == 200 and client.get("/documents", headers=proxy).status_code == 200
        write_key = KeyStore(s.resolved_keys_file()).add("writer", "write")
        method, url, kw = write_requests(DOC)[0]
        r = call(client, method, url, {**kw, "headers": proxy}, key=write_key)
        assert r.status_code == 201, r.text


def test_serve_banner_says_read_only_and_shows_the_real_address(tmp_path):
    from api.serve import banner

    s, _ = make(tmp_path, host="0.0.0.0", allowed_hosts="")
    text = "\n".join(banner(s))
    assert "every network interface" in text and "READ-ONLY" in text and "qa keys add" in text
    s2, _ = make(tmp_path)
    assert "READ-ONLY" not in "\n".join(banner(s2))
    assert "through a proxy" in "\n".join(banner(s2)) and "read-only" in "\n".join(banner(s2))


@pytest.mark.parametrize("host,ok", [("testserver", True), ("evil.example", False), ("127.0.0.1.nip.io", False)])
def test_host_allow_list(tmp_path, host, ok):
    s, client = make(tmp_path)
    with client:
        r = client.get("/documents", headers={"host": host})
        if ok:
            assert r.status_code == 200
        else:
            assert r.status_code == 400 and r.json()["error"] == "host_not_allowed", r.text
            assert "QA_ALLOWED_HOSTS" in r.json()["message"]


def test_an_allowed_host_given_with_its_port_is_allowed(tmp_path):
    """Host headers are compared without their port, so QA_ALLOWED_HOSTS=qa.example.org:8000 -- what the 400's
    message showed ("Host 'qa.example.org:8000' is not served here; ... allow it") -- allowed nothing."""
    s, client = make(tmp_path, allowed_hosts="qa.example.org:8000,[::1]:8000")
    with client:
        assert client.get("/documents", headers={"host": "qa.example.org:8000"}).status_code == 200
        assert client.get("/documents", headers={"host": "[::1]:8000"}).status_code == 200
        r = client.get("/documents", headers={"host": "evil.example:8000"})
        assert r.status_code == 400 and "'evil.example'" in r.json()["message"], r.text


def test_default_hosts_are_loopback_names(tmp_path):
    s, client = make(tmp_path, allowed_hosts="")
    with client:
        for host in ("localhost:8000", "127.0.0.1:8000", "[::1]:8000"):
            assert client.get("/health", headers={"host": host}).status_code == 200, host
        assert client.get("/health", headers={"host": "attacker.example:8000"}).status_code == 400


@pytest.mark.parametrize("headers,ok", [
    ({"Origin": "http://testserver"}, True),  # the page itself
    ({}, True),  # not a browser (curl, scripts)
    ({"Sec-Fetch-Site": "same-origin"}, True),
    ({"Origin": "http://evil.example"}, False),
    ({"Origin": "http://localhost:9999"}, False),  # another local origin
    ({"Origin": "null"}, False),  # sandboxed iframe, file://
    ({"Sec-Fetch-Site": "cross-site"}, False),
])
def test_cross_origin_writes_are_refused(tmp_path, headers, ok):
    s, client = make(tmp_path)
    with client:
        before = corpus_files(s)
        r = client.post("/documents", headers=headers,
                        files=[("files", ("forged.txt", b"Forged text.", "text/plain"))])
        if ok:
            assert r.status_code == 201, r.text
        else:
            assert r.status_code == 403 and r.json()["error"] == "cross_origin", r.text
            assert corpus_files(s) == before
            # reads from other origins are not writes: still fine
            assert client.post("/ask", headers=headers, json={"question": "Kazakhstan?"}).status_code == 200


def test_cross_origin_refused_even_with_a_write_key_and_allowed_when_configured(keyed, tmp_path):
    s, client, _r, write_key = keyed
    with client:
        r = call(client, "DELETE", f"/documents/{DOC}", {"headers": {"Origin": "http://evil.example"}}, key=write_key)
        assert r.status_code == 403 and DOC in corpus_files(s)
    s2, client2 = make(tmp_path, allowed_origins="https://qa.example.org")
    with client2:
        r = client2.delete(f"/documents/{DOC}", headers={"Origin": "https://qa.example.org", **bearer(write_key)})
        assert r.status_code == 200, r.text


@pytest.mark.parametrize("configured", ["https://Portal.Example.org", "https://portal.example.org:443/",
                                        "HTTPS://portal.example.org"])
def test_allowed_origins_match_as_browsers_send_them(tmp_path, configured):
    """Browsers send an origin in lower case without its default port: QA_ALLOWED_ORIGINS spelled otherwise
    refused the very origin it named (403 cross_origin)."""
    s, client = make(tmp_path, allowed_origins=configured)
    with client:
        r = client.delete(f"/documents/{DOC}", headers={"Origin": "https://portal.example.org"})
        assert r.status_code == 200, r.text
        r = client.post("/documents", headers={"Origin": "https://portal.example.org:8443"},
                        files=[("files", ("forged.txt", b"Forged text.", "text/plain"))])
        assert r.status_code == 403 and r.json()["error"] == "cross_origin"  # another port is another origin


def test_qa_keys_cli(tmp_path):
    env = {"QA_INDEX_DIR": str(tmp_path / "index"), "PYTHONPATH": str(PROJECT_ROOT), "PATH": "/usr/bin:/bin"}

    def qa(*args):
        return subprocess.run([sys.executable, "-m", "qa.cli", "keys", *args], cwd=PROJECT_ROOT, env=env,
                              capture_output=True, text=True, timeout=120)

    r = qa("add", "ci-bot", "--scope", "write")
    assert r.returncode == 0, r.stderr
    key = r.stdout.strip().splitlines()[-1]  # the key is the last line
    assert key.startswith("qa_") and len(key) > 40
    path = tmp_path / "qa-keys.json"
    stored = path.read_text()
    assert key not in stored and json.loads(stored)["keys"][0]["scope"] == "write"
    assert (path.stat().st_mode & 0o777) == 0o600
    assert KeyStore(path).verify(key).name == "ci-bot"
    assert qa("add", "ci-bot", "--scope", "read").returncode == 1  # duplicate name
    assert qa("add", "x", "--scope", "admin").returncode != 0
    listed = qa("list")
    assert "ci-bot" in listed.stdout and "write" in listed.stdout and key not in listed.stdout
    assert qa("revoke", "ci-bot").returncode == 0
    assert KeyStore(path).verify(key) is None
    assert qa("revoke", "ci-bot").returncode == 1


def test_a_key_file_that_is_a_fifo_is_refused_not_waited_on(tmp_path):
    """A FIFO in place of the key file made `qa keys list` / `add` wait for ever, and every request that looked at
    the keys with them (``/ready`` on the event loop: the whole server)."""
    import os

    s, client = make(tmp_path)
    os.mkfifo(s.resolved_keys_file())
    env = {"QA_INDEX_DIR": str(s.index_dir), "PYTHONPATH": str(PROJECT_ROOT), "PATH": "/usr/bin:/bin"}
    for args in (["list"], ["add", "ci-bot", "--scope", "write"]):
        r = subprocess.run([sys.executable, "-m", "qa.cli", "keys", *args], cwd=PROJECT_ROOT, env=env,
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 1 and "not a regular file" in r.stderr, r.stderr
    with client:
        assert client.get("/ready").json()["writes"] == "key"  # fails closed, like any unreadable key file
        r = call(client, *write_requests(DOC)[2])
        assert r.status_code == 401 and DOC in corpus_files(s)


def test_a_key_file_that_cannot_be_written_says_what_to_do(tmp_path, monkeypatch):
    """`qa keys add` with QA_KEYS_FILE under a file, or where its folder cannot be made, raised FileExistsError /
    FileNotFoundError as a traceback; a failed write (a full disk) left its temporary file behind."""
    (tmp_path / "a-file").write_text("x", encoding="utf-8")
    with pytest.raises(KeyStoreError, match=r"a folder above it is a file\); set QA_KEYS_FILE"):
        KeyStore(tmp_path / "a-file" / "keys.json").add("ci-bot", "write")
    with pytest.raises(KeyStoreError, match="set QA_KEYS_FILE to a file in a folder you can write"):
        KeyStore(Path("/proc/qa-keys.json")).revoke("ci-bot")

    def full(*a, **k):
        raise OSError(28, "No space left on device")

    store = KeyStore(tmp_path / "keys.json")
    monkeypatch.setattr("qa.keys.os.fsync", full)
    with pytest.raises(KeyStoreError, match=r"\(No space left on device\)"):
        store.add("ci-bot", "write")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file", "keys.json.lock"]


def test_ready_says_who_may_write(tmp_path):
    s, client = make(tmp_path)
    with client:
        assert client.get("/ready").json()["writes"] == "open"
        KeyStore(s.resolved_keys_file()).add("w", "write")
        assert client.get("/ready").json()["writes"] == "key"
    s2, client2 = make(tmp_path / "other", host="192.0.2.10")
    with client2:
        assert client2.get("/ready").json()["writes"] == "read_only"
