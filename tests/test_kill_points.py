"""Kill -9 at random moments: corpus folder and index must agree after every restart, and
nothing acknowledged may be lost.

* ``test_kill_points_lite_server``: a server subprocess running the real write path with small
  stand-in models (tests/lite_pipeline.py), killed at 20 random moments while one client
  uploads, replaces, deletes and restores, and -- every fourth round -- while start-up
  re-indexes a file added by hand. After each kill the journal is replayed (as the next start
  does) and the corpus is compared with the active index: 0 differences allowed.
* ``test_kill_real_qa_serve_while_indexing``: the real ``qa serve`` (real models) killed while it
  indexes an upload; after a restart the upload is either fully there or not at all, and can be
  uploaded again (no "delete it first" for a file the index does not know).

``bench/bench_kill_points.py`` runs the first one for 100 rounds and prints the figures.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from qa.config import PROJECT_ROOT, Settings
from qa.index_store import active_documents
from qa.writes import Writer, differences

SEEDS = PROJECT_ROOT / "seeds"
LITE_SERVER = Path(__file__).resolve().parent / "lite_pipeline.py"
ANY = "any version"  # an in-flight restore: the outcome is the newest trashed version
WORDS = ("heron egret kestrel gannet puffin otter badger falcon osprey curlew lapwing plover "
         "river estuary marsh cliff harbour lighthouse island meadow").split()


def sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method: str, url: str, body: bytes | None = None, headers: dict | None = None, timeout: float = 60):
    """(status, parsed JSON or None); raises OSError when the server is gone."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            return e.code, json.loads(raw or b"null")
        except ValueError:
            return e.code, None


def multipart(name: str, data: bytes) -> tuple[bytes, dict]:
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{name}\"\r\n"
            f"Content-Type: text/plain\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def corpus_state(corpus: Path) -> dict[str, str]:
    return {p.relative_to(corpus).as_posix(): sha(p.read_bytes()) for p in corpus.rglob("*")
            if p.is_file() and not any(x.startswith(".") for x in p.relative_to(corpus).parts)}


def trash_shas(index_dir: Path) -> set[str]:
    return {sha(p.read_bytes()) for p in (index_dir / "trash").glob("*/data")}


def recover_offline(settings: Settings, figures: dict | None = None) -> None:
    """What the next start does first: finish or undo the interrupted write."""
    done = Writer(settings, lambda *a: (_ for _ in ()).throw(AssertionError("recovery never indexes"))).recover()
    if figures is not None:
        for r in done:
            figures[r.action] = figures.get(r.action, 0) + 1


def wait_ready(url: str, proc: subprocess.Popen, timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            pytest.fail(f"server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            status, body = http("GET", url + "/ready", timeout=5)
            if status == 200:
                return
            if body and body.get("status") == "failed":
                pytest.fail(f"server failed to start: {body}\n{log.read_text()[-3000:]}")
        except OSError:
            pass
        assert time.monotonic() < deadline, f"not ready after {timeout}s:\n{log.read_text()[-3000:]}"
        time.sleep(0.05)


def kill(proc: subprocess.Popen) -> None:
    with_group = True
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        with_group = False
    if not with_group:
        proc.kill()
    proc.wait(30)


@dataclass
class Client:
    """One client doing random writes in sequence, recording what the server acknowledged."""

    url: str
    rng: random.Random
    tag: str
    expected: dict[str, str]  # id -> sha256 as acknowledged (None: acknowledged deleted)
    seen: set[str] = field(default_factory=set)  # every sha256 the server ever held
    in_flight: tuple[str, str | None, str | None] | None = None  # (id, sha before, sha after)
    acked: int = 0
    stop: threading.Event = field(default_factory=threading.Event)

    def text(self, n_words: int) -> bytes:
        return (" ".join(self.rng.choice(WORDS) for _ in range(n_words)) + ".\n").encode()

    def run(self) -> None:
        i = 0
        while not self.stop.is_set():
            i += 1
            try:
                self.step(i)
            except OSError:
                return  # the server is gone
            except Exception:  # noqa: BLE001 - a torn response from a dying server
                return

    def step(self, i: int) -> None:
        live = sorted(k for k, v in self.expected.items() if v is not None)
        gone = sorted(k for k, v in self.expected.items() if v is None)
        op = self.rng.choice(["upload", "upload", "replace", "delete", "restore"])
        if op == "upload" or not live:
            name = f"{self.tag}-{i}.txt"
            data = self.text(self.rng.choice([20, 500, 5000, 30000]))
            self.in_flight = (name, None, sha(data))
            body, headers = multipart(name, data)
            status, _ = http("POST", self.url + "/documents", body, headers)
            if status == 202:  # a background job (not with these sizes): its outcome is not tracked
                self.in_flight = None
                return
            assert status == 201, status
            self.expected[name] = sha(data)
        elif op == "replace":
            doc = self.rng.choice(live)
            data = self.text(self.rng.choice([30, 3000]))
            self.in_flight = (doc, self.expected[doc], sha(data))
            status, _ = http("PUT", self.url + "/documents/" + doc, data, {"If-Match": self.expected[doc]})
            assert status == 200, status
            self.expected[doc] = sha(data)
        elif op == "delete":
            doc = self.rng.choice(live)
            self.in_flight = (doc, self.expected[doc], None)
            status, _ = http("DELETE", self.url + "/documents/" + doc)
            assert status == 200, status
            self.expected[doc] = None
        else:
            if not gone:
                return
            doc = self.rng.choice(gone)
            self.in_flight = (doc, None, ANY)  # brings back the newest trashed version, whichever it is
            status, body = http("POST", self.url + f"/documents/{doc}/restore")
            if status == 404:  # its trash entry belongs to an earlier round's unknown outcome
                self.in_flight = None
                return
            assert status == 200, status
            self.in_flight = (doc, None, body["document"]["sha256"])
            self.expected[doc] = body["document"]["sha256"]
        self.seen.add(self.in_flight[2] or "")
        self.in_flight = None
        self.acked += 1


def start_lite(env: dict, log: Path) -> tuple[subprocess.Popen, str]:
    """A lite server subprocess on a free loopback port (its own session, so a kill reaches it whole); its URL."""
    port = free_port()
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, str(LITE_SERVER), "--port", str(port)], cwd=PROJECT_ROOT,
                                env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    return proc, f"http://127.0.0.1:{port}"


def run_kill_rounds(tmp: Path, rounds: int, seed: int, report=None) -> dict:
    """Kill a lite server ``rounds`` times; assert agreement after each. Returns figures."""
    rng = random.Random(seed)
    corpus, index = tmp / "corpus", tmp / "index"
    shutil.copytree(SEEDS, corpus)
    settings = Settings(corpus_dir=corpus, index_dir=index)
    env = {**os.environ, "QA_CORPUS_DIR": str(corpus), "QA_INDEX_DIR": str(index),
           "QA_ALLOWED_HOSTS": "127.0.0.1", "PYTHONPATH": str(PROJECT_ROOT), "PYTHONUNBUFFERED": "1"}
    seen = set(corpus_state(corpus).values())
    figures = {"rounds": 0, "differences_after_kill": 0, "acknowledged_writes": 0, "lost": 0,
               "killed_during_startup_reindex": 0, "rolled_forward": 0, "rolled_back": 0}
    for r in range(rounds):
        hand_made = r % 4 == 3
        if hand_made:  # start-up will have to re-index this: kill it while it does
            (corpus / f"hand-{r}.txt").write_bytes(b"Added by hand: " + b"curlew " * rng.choice([10, 20000]))
        log = tmp / f"server-{r}.log"
        proc, url = start_lite(env, log)
        try:
            if hand_made:
                time.sleep(rng.uniform(0.5, 2.0))  # somewhere in import / recovery / re-indexing / serving
                kill(proc)
                recover_offline(settings, figures)
                diffs = differences(corpus, active_documents(index))
                assert all(d.id == f"hand-{r}.txt" and d.kind == "not_indexed" for d in diffs), diffs
                figures["killed_during_startup_reindex"] += bool(diffs)
                figures["rounds"] += 1
                continue
            wait_ready(url, proc, 60, log)
            status, body = http("GET", url + "/documents")
            expected = {d["id"]: d["sha256"] for d in body["documents"]}
            assert expected == corpus_state(corpus), "after a restart the server and the corpus disagree"
            client = Client(url, random.Random(rng.random()), f"r{r}", dict(expected), seen)
            worker = threading.Thread(target=client.run, daemon=True)
            worker.start()
            time.sleep(rng.uniform(0.05, 1.5))
            kill(proc)
            client.stop.set()
            worker.join(30)
        finally:
            if proc.poll() is None:
                kill(proc)
        recover_offline(settings, figures)
        diffs = differences(corpus, active_documents(index))
        figures["differences_after_kill"] += len(diffs)
        assert diffs == [], f"round {r}: corpus and index disagree after kill -9: {diffs}"
        state = corpus_state(corpus)
        flight = client.in_flight
        for doc, want in client.expected.items():
            if flight is not None and doc == flight[0]:
                if flight[2] == ANY:
                    assert state.get(doc) is None or state.get(doc) in seen, (doc, state.get(doc))
                else:
                    assert state.get(doc) in (flight[1], flight[2]), (doc, state.get(doc), flight)
            else:
                assert state.get(doc) == want, f"round {r}: acknowledged state of {doc} lost"
        kept = set(state.values()) | trash_shas(index)
        lost = {s for s in seen if s} - kept
        figures["lost"] += len(lost)
        assert not lost, f"round {r}: {len(lost)} acknowledged versions are neither in the corpus nor the trash"
        figures["acknowledged_writes"] += client.acked
        figures["rounds"] += 1
        if report:
            report(r, client.acked, flight)
    # a last clean start: the server agrees with the corpus, and writes work
    log = tmp / "server-final.log"
    proc, url = start_lite(env, log)
    try:
        wait_ready(url, proc, 60, log)
        status, body = http("GET", url + "/documents")
        assert {d["id"]: d["sha256"] for d in body["documents"]} == corpus_state(corpus)
        body_, headers = multipart("final.txt", b"The last word.")
        assert http("POST", url + "/documents", body_, headers)[0] == 201
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    assert differences(corpus, active_documents(index)) == []
    return figures


def test_kill_points_lite_server(tmp_path):
    figures = run_kill_rounds(tmp_path, rounds=20, seed=17)
    print(figures)
    assert figures["rounds"] == 20 and figures["differences_after_kill"] == 0 and figures["lost"] == 0
    assert figures["acknowledged_writes"] > 0  # the kills did land among real writes
    assert figures["rolled_forward"] + figures["rolled_back"] > 0  # and some inside a write transaction


def test_kill_with_upload_jobs_queued_then_restart(tmp_path):
    """Uploads answered 202 and a server killed with them queued: the next start runs every one (they were lost)."""
    corpus, index = tmp_path / "corpus", tmp_path / "index"
    shutil.copytree(SEEDS, corpus)
    env = {**os.environ, "QA_CORPUS_DIR": str(corpus), "QA_INDEX_DIR": str(index), "QA_ASYNC_UPLOAD_BYTES": "1000",
           "QA_ALLOWED_HOSTS": "127.0.0.1", "PYTHONPATH": str(PROJECT_ROOT), "PYTHONUNBUFFERED": "1"}
    files = {f"job-{i}.txt": (f"Job {i}: " + " ".join(WORDS) * 40).encode() for i in range(6)}
    ids = []
    for attempt in ("killed", "restarted"):
        log = tmp_path / f"{attempt}.log"
        proc, url = start_lite(env, log)
        try:
            wait_ready(url, proc, 60, log)
            if attempt == "killed":
                for name, data in files.items():
                    status, job = http("POST", url + "/documents", *multipart(name, data))
                    assert status == 202, job
                    ids.append(job["id"])
                kill(proc)
                records = [json.loads(p.read_text()) for p in (index / "jobs").glob("*/job.json")]
                unfinished = sum(not r.get("finished_at") for r in records)
                assert len(records) == len(files) and unfinished > 0, records  # the kill left work to do
                continue
            deadline = time.monotonic() + 60
            while (jobs := [http("GET", f"{url}/jobs/{i}")[1] for i in ids]) and \
                    any(j["status"] not in ("done", "failed") for j in jobs):
                assert time.monotonic() < deadline, jobs
                time.sleep(0.2)
            assert [j["result"]["added"] for j in jobs] == [[name] for name in files], jobs
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(30)
    state = corpus_state(corpus)
    assert all(state[name] == sha(data) for name, data in files.items())
    assert differences(corpus, active_documents(index)) == []


@pytest.mark.slow
def test_kill_real_qa_serve_while_indexing(tmp_path):
    corpus, index = tmp_path / "corpus", tmp_path / "index"
    corpus.mkdir()
    for p in sorted(SEEDS.iterdir())[:2]:
        shutil.copy(p, corpus / p.name)
    env = {**os.environ, "QA_CORPUS_DIR": str(corpus), "QA_INDEX_DIR": str(index), "PYTHONUNBUFFERED": "1",
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    big = ("The osprey colony on Varn island was counted in 1987 by the harbour master. " * 1500).encode()
    rng = random.Random(4)

    def start(name: str):
        port = free_port()
        log = tmp_path / f"{name}.log"
        with open(log, "w") as out:
            proc = subprocess.Popen([sys.executable, "-m", "qa.cli", "serve", "--port", str(port)], cwd=PROJECT_ROOT,
                                    env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        url = f"http://127.0.0.1:{port}"
        # it listens at once and answers /health while it warms up
        deadline = time.monotonic() + 120
        while True:
            try:
                assert http("GET", url + "/health", timeout=5)[0] == 200
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
                time.sleep(0.1)
        wait_ready(url, proc, 600, log)
        return proc, url

    proc, url = start("first")
    try:
        body, headers = multipart("ospreys.txt", big)
        result = {}
        t = threading.Thread(target=lambda: result.setdefault("r", _try(http, "POST", url + "/documents", body, headers)))
        t.start()
        time.sleep(rng.uniform(0.5, 3.0))  # the embedder is at work on ~110 KB of text
        kill(proc)
        t.join(30)
    finally:
        if proc.poll() is None:
            kill(proc)
    proc, url = start("second")
    try:
        status, docs = http("GET", url + "/documents")
        served = {d["id"]: d["sha256"] for d in docs["documents"]}
        assert served == corpus_state(corpus)  # agreement after the restart
        assert differences(corpus, active_documents(index)) == []
        print("killed", "after" if "ospreys.txt" in served else "before", "the commit")
        if "ospreys.txt" in served:  # the kill came after the commit: all of it is there
            assert served["ospreys.txt"] == sha(big)
            assert http("POST", url + "/documents", body, headers)[0] == 409
        else:  # before the commit: nothing of it is there, and it can be uploaded again
            assert not (corpus / "ospreys.txt").exists()
            assert http("POST", url + "/documents", body, headers, timeout=600)[0] == 201
        status, answer = http("POST", url + "/ask", json.dumps({"question": "When was the osprey colony counted?"}).encode(),
                              {"Content-Type": "application/json"}, timeout=120)
        assert status == 200
        assert any(p["document"] == "ospreys.txt" for p in answer["passages"])  # indexed and retrieved
        texts = {}
        for item in answer["passages"] + [c for a in answer["answers"] for c in a["citations"]]:  # an answer is text + citations
            doc = item["document"]
            texts.setdefault(doc, http("GET", url + "/documents/" + doc)[1]["text"])
            assert texts[doc][item["start"]:item["end"]] == item["text"]  # citations stay exact
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)


def _try(fn, *a, **kw):
    try:
        return fn(*a, **kw)
    except OSError as e:
        return e
