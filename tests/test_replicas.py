"""Two `qa serve` replicas agree: what one writes, the other serves.

* Milvus: the test starts `milvus-lite server` on a free loopback port (its data in tmp_path) and two
  `qa serve` processes with QA_STORE=milvus and QA_MILVUS_URI=http://127.0.0.1:P, each with its own
  (empty) index folder: everything they serve comes from Milvus.
* FAISS: two `qa serve` processes on one corpus and index folder; a replica notices another's new
  CURRENT (QA_RELOAD_INTERVAL_S) and reloads.

Writes carry a write key (Authorization: Bearer), as a deployment for others would. Every process is
started and stopped by the test itself; nothing leaves loopback.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from test_kill_points import SEEDS, free_port, http, kill, multipart, wait_ready  # noqa: E402

from qa.config import PROJECT_ROOT  # noqa: E402
from qa.keys import KeyStore  # noqa: E402

pytestmark = pytest.mark.slow

NEW_DOC = "ospreys.txt"
NEW_TEXT = ("The osprey colony on Varn island was counted in 1987 by the harbour master, "
            "who found 212 nesting pairs on the western cliffs.\n").encode()
QUESTION = "When was the osprey colony on Varn island counted?"


def wait_until(what: str, predicate, timeout: float = 60.0) -> None:
    """Poll ``predicate`` until it holds (a replica picking up another's write); fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: still not true after {timeout}s")
        time.sleep(0.1)


def start_serve(name: str, tmp: Path, env: dict) -> tuple[subprocess.Popen, str]:
    port = free_port()
    log = tmp / f"{name}.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "qa.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
                                cwd=PROJECT_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, proc, 600, log)
    except BaseException:
        kill(proc)
        raise
    return proc, url


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            kill(proc)


def doc_url(url: str, doc_id: str) -> str:
    return f"{url}/documents/{urllib.parse.quote(doc_id)}"


def served_ids(url: str) -> set[str]:
    status, body = http("GET", url + "/documents")
    assert status == 200, body
    return {d["id"] for d in body["documents"]}


def base_env(tmp: Path, corpus: Path) -> tuple[dict, str]:
    keys = tmp / "keys.json"
    key = KeyStore(keys).add("replica-test", "write")
    env = {**os.environ, "QA_CORPUS_DIR": str(corpus), "QA_KEYS_FILE": str(keys), "PYTHONUNBUFFERED": "1",
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "QA_ASYNC_UPLOAD_BYTES": str(10 ** 7)}
    return env, key


def small_corpus(tmp: Path) -> Path:
    corpus = tmp / "corpus"
    corpus.mkdir()
    for p in sorted(SEEDS.glob("*.txt"))[:2]:
        shutil.copy(p, corpus / p.name)
    return corpus


def check_agreement(a: str, b: str, key: str) -> None:
    """Upload through A, read and ask through B; delete through B, A answers 404."""
    auth = {"Authorization": f"Bearer {key}"}
    body, headers = multipart(NEW_DOC, NEW_TEXT)
    assert http("POST", a + "/documents", body, headers)[0] == 401  # writes need the key
    status, up = http("POST", a + "/documents", body, {**headers, **auth}, timeout=300)
    assert status == 201, up

    wait_until("B lists the document A stored", lambda: NEW_DOC in served_ids(b))
    status, got = http("GET", doc_url(b, NEW_DOC))
    assert status == 200 and got["text"] == NEW_TEXT.decode()
    status, answer = http("POST", b + "/ask", json.dumps({"question": QUESTION}).encode(),
                          {"Content-Type": "application/json"}, timeout=300)
    assert status == 200, answer
    assert answer["passages"][0]["document"] == NEW_DOC
    texts: dict[str, str] = {}
    for item in answer["passages"] + [c for x in answer["answers"] for c in x["citations"]]:
        doc = item["document"]
        texts.setdefault(doc, http("GET", doc_url(b, doc))[1]["text"])
        assert texts[doc][item["start"]:item["end"]] == item["text"]  # citations exact on the other replica
    if answer["answer_found"]:
        assert "1987" in answer["answers"][0]["text"]

    # replace through B (If-Match: the sha256 A stored), A serves the new text
    new_text = NEW_TEXT + b"A second count in 1994 found 230 pairs.\n"
    sha_before = next(d["sha256"] for d in http("GET", b + "/documents")[1]["documents"] if d["id"] == NEW_DOC)
    assert http("PUT", doc_url(b, NEW_DOC), new_text, {**auth, "If-Match": "0" * 64})[0] == 412
    status, _ = http("PUT", doc_url(b, NEW_DOC), new_text, {**auth, "If-Match": sha_before})
    assert status == 200
    wait_until("A serves the text B replaced", lambda: http("GET", doc_url(a, NEW_DOC))[1]["text"] == new_text.decode())

    assert http("DELETE", doc_url(b, NEW_DOC))[0] == 401
    status, _ = http("DELETE", doc_url(b, NEW_DOC), headers=auth)
    assert status in (200, 204)
    wait_until("A forgets the document B deleted", lambda: http("GET", doc_url(a, NEW_DOC))[0] == 404)
    assert NEW_DOC not in served_ids(a)
    assert http("DELETE", doc_url(a, NEW_DOC), headers=auth)[0] == 404  # gone for A as well

    # one trash for both: A lists what B deleted and restores it; B serves it again
    trash = http("GET", a + "/trash", headers=auth)[1]["entries"]
    assert [(t["id"], t["reason"]) for t in trash if t["id"] == NEW_DOC][:2] == [(NEW_DOC, "deleted"), (NEW_DOC, "replaced")]
    status, restored = http("POST", doc_url(a, NEW_DOC) + "/restore", b"", auth, timeout=300)
    assert status == 200, restored
    wait_until("B serves the document A restored",
               lambda: http("GET", doc_url(b, NEW_DOC))[1].get("text") == new_text.decode())
    assert http("DELETE", doc_url(b, NEW_DOC), headers=auth)[0] in (200, 204)
    wait_until("A forgets it again", lambda: http("GET", doc_url(a, NEW_DOC))[0] == 404)


@pytest.fixture
def milvus_server(tmp_path):
    """`milvus-lite server` on a free loopback port, data in tmp_path; stopped afterwards."""
    exe = Path(sys.executable).parent / "milvus-lite"
    port = free_port()
    log = tmp_path / "milvus.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([str(exe), "server", "--data-dir", str(tmp_path / "milvus-data"), "--host", "127.0.0.1",
                                 "--port", str(port)], stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                assert time.monotonic() < deadline, f"milvus-lite server not listening: {log.read_text()}"
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            kill(proc)


def test_milvus_replicas_agree(tmp_path, milvus_server):
    corpus = small_corpus(tmp_path)
    env, key = base_env(tmp_path, corpus)
    env.update({"QA_STORE": "milvus", "QA_MILVUS_URI": milvus_server, "QA_MILVUS_COLLECTION": "replicas"})
    a = b = None
    try:
        a, url_a = start_serve("a", tmp_path, {**env, "QA_INDEX_DIR": str(tmp_path / "index-a")})  # fills Milvus
        b, url_b = start_serve("b", tmp_path, {**env, "QA_INDEX_DIR": str(tmp_path / "index-b")})
        seeds = {p.name for p in corpus.iterdir()}
        assert served_ids(url_a) == served_ids(url_b) == seeds
        check_agreement(url_a, url_b, key)
        assert served_ids(url_a) == served_ids(url_b) == seeds
        # neither replica keeps an index of its own: everything is in Milvus
        assert not (tmp_path / "index-a" / "CURRENT").exists() and not (tmp_path / "index-b" / "CURRENT").exists()
    finally:
        for p in (a, b):
            if p is not None:
                stop(p)


def test_faiss_replicas_on_one_index_folder_agree(tmp_path):
    corpus = small_corpus(tmp_path)
    env, key = base_env(tmp_path, corpus)
    env.update({"QA_INDEX_DIR": str(tmp_path / "index"), "QA_RELOAD_INTERVAL_S": "0.2"})
    a = b = None
    try:
        a, url_a = start_serve("a", tmp_path, env)  # builds the index
        b, url_b = start_serve("b", tmp_path, env)  # loads it
        check_agreement(url_a, url_b, key)
        assert not (corpus / NEW_DOC).exists()  # B's delete moved the file to the trash
        assert served_ids(url_a) == served_ids(url_b) == {p.name for p in corpus.iterdir()}
    finally:
        for p in (a, b):
            if p is not None:
                stop(p)
