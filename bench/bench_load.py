"""A bounded loopback load: N /ask requests at concurrency C while a writer uploads and deletes
documents, checking every answer's citations against the exact document text. Prints errors,
citation checks and /ask latency with and without a write in progress (figures only, no asserts).

    python bench/bench_load.py                     # 10,000 asks at 16, lite models (write path real)
    python bench/bench_load.py --real --requests 400 --concurrency 4   # the real models (slow on 2 cores)
    python bench/bench_load.py --url http://127.0.0.1:8000 --key KEY  # a running server

Without --url it starts a server on a free loopback port on a temp copy of seeds/: ``qa serve``
with --real, else tests/lite_pipeline.py (the real API, journal, trash and FAISS index with small
stand-in models, so the figures measure the service, not the reader).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = [
    "When did the protests in Kazakhstan begin?",
    "Who won the election?",
    "What happened in January?",
    "Where did the storm make landfall?",
    "When was the lighthouse on Tesk island built?",
    "Who built the Quillon lighthouse?",
]


def http(method, url, body=None, headers=None, timeout=120):
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(real: bool, tmp: Path):
    corpus = tmp / "corpus"
    shutil.copytree(ROOT / "seeds", corpus)
    port = free_port()
    env = {**os.environ, "QA_CORPUS_DIR": str(corpus), "QA_INDEX_DIR": str(tmp / "index"),
           "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    cmd = ([sys.executable, "-m", "qa.cli", "serve", "--port", str(port), "--log-level", "warning"] if real
           else [sys.executable, str(ROOT / "tests" / "lite_pipeline.py"), "--port", str(port)])
    log = open(tmp / "server.log", "w")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 900
    while True:
        try:
            if http("GET", url + "/ready", timeout=5)[0] == 200:
                return proc, url
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"server did not start:\n{(tmp / 'server.log').read_text()[-3000:]}")
        time.sleep(0.5)


def multipart(name: str, data: bytes):
    b = uuid.uuid4().hex
    body = (f'--{b}\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n'
            "Content-Type: text/plain\r\n\r\n").encode() + data + f"\r\n--{b}--\r\n".encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={b}"}


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))] if xs else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=10_000)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--real", action="store_true", help="serve the real models (qa serve)")
    ap.add_argument("--url", help="a running server instead of starting one")
    ap.add_argument("--key", help="a write key, if the server has keys")
    ap.add_argument("--doc-kb", type=int, default=60, help="size of each uploaded document")
    ap.add_argument("--warmup", type=int, default=20, help="asks sent first and not counted (first calls are slow)")
    args = ap.parse_args()

    auth = {"Authorization": f"Bearer {args.key}"} if args.key else {}
    tmp = Path(tempfile.mkdtemp(prefix="qa-load-"))
    proc = None
    try:
        if args.url:
            url = args.url.rstrip("/")
        else:
            proc, url = start_server(args.real, tmp)
        texts: dict[str, str] = {}  # documents the writer owns: exact text, known locally
        text_lock = threading.Lock()
        fetched: dict[str, str] = {}
        writing = threading.Event()
        stop = threading.Event()
        counts = {"uploads": 0, "deletes": 0, "write_errors": 0}

        def writer():
            rng = random.Random(7)
            i = 0
            while not stop.is_set():
                i += 1
                name = f"load-{i}.txt"
                words = ["The", "Quillon", "lighthouse", "on", "Tesk", "island", "was", "built", "in", str(1800 + i),
                         "by", "Marta", "Okonkwo."]
                text = " ".join(words) + "\n" + ("Filler sentence about the harbour. " * (args.doc_kb * 30)) + "\n"
                with text_lock:
                    texts[name] = text
                body, headers = multipart(name, text.encode())
                writing.set()
                status, resp = http("POST", url + "/documents", body, {**headers, **auth})
                if status == 202:
                    while http("GET", url + f"/jobs/{resp['id']}", headers=auth)[1]["status"] not in ("done", "failed"):
                        time.sleep(0.05)
                elif status != 201:
                    counts["write_errors"] += 1
                counts["uploads"] += 1
                if rng.random() < 0.7 and i > 1:
                    victim = f"load-{i - 1}.txt"
                    s, _ = http("DELETE", url + "/documents/" + victim, headers=auth)
                    counts["deletes"] += 1
                    counts["write_errors"] += s != 200
                writing.clear()
                time.sleep(rng.uniform(0.0, 0.2))

        lat_quiet, lat_writing = [], []
        errors = {"http": 0, "citation": 0, "exception": 0}
        checked = {"citations": 0}
        lock = threading.Lock()

        def doc_text(doc):
            with text_lock:
                if doc in texts:
                    return texts[doc]
            if doc not in fetched:
                status, body = http("GET", url + "/documents/" + doc, headers=auth)
                fetched[doc] = body["text"] if status == 200 else None
            return fetched[doc]

        def one(n):
            q = QUESTIONS[n % len(QUESTIONS)]
            during = writing.is_set()
            t0 = time.perf_counter()
            try:
                status, body = http("POST", url + "/ask", json.dumps({"question": q}).encode(),
                                    {"Content-Type": "application/json", **auth})
            except Exception:  # noqa: BLE001
                with lock:
                    errors["exception"] += 1
                return
            ms = (time.perf_counter() - t0) * 1000
            with lock:
                (lat_writing if during or writing.is_set() else lat_quiet).append(ms)
                if status != 200:
                    errors["http"] += 1
                    return
            for a in body["answers"]:
                for c in [a, *a["citations"]]:
                    text = doc_text(c["document"])
                    ok = text is not None and text[c["start"]:c["end"]] == c["text"]
                    with lock:
                        checked["citations"] += 1
                        errors["citation"] += not ok

        for n in range(args.warmup):
            http("POST", url + "/ask", json.dumps({"question": QUESTIONS[n % len(QUESTIONS)]}).encode(),
                 {"Content-Type": "application/json", **auth})
        # Phase 1: asks alone (the baseline). Phase 2: the same number of asks with the writer running.
        half = args.requests // 2
        t0 = time.perf_counter()
        with ThreadPoolExecutor(args.concurrency) as pool:
            list(pool.map(one, range(half)))
        quiet_phase = list(lat_quiet)
        w = threading.Thread(target=writer, daemon=True)
        w.start()
        with ThreadPoolExecutor(args.concurrency) as pool:
            list(pool.map(one, range(half, args.requests)))
        elapsed = time.perf_counter() - t0
        stop.set()
        w.join(600)

        mode = "real models" if args.real else ("running server" if args.url else "lite models, real write path")
        print(f"{args.requests} /ask at concurrency {args.concurrency} ({mode}) in {elapsed:.1f}s "
              f"= {args.requests / elapsed:.1f} req/s")
        print(f"errors: {errors['http']} non-200, {errors['exception']} connection errors; "
              f"citations checked {checked['citations']}, inexact {errors['citation']}")
        print(f"writes interleaved in the second half: {counts['uploads']} uploads of ~{args.doc_kb} KB, "
              f"{counts['deletes']} deletes, {counts['write_errors']} write errors")
        for label, xs in (("first half, no writes", quiet_phase),
                          ("second half, while an upload/delete was indexing", lat_writing),
                          ("second half, between writes", lat_quiet[len(quiet_phase):])):
            if xs:
                print(f"/ask latency, {label}: n={len(xs)} p50 {pct(xs, 50):.0f} ms, p95 {pct(xs, 95):.0f} ms, "
                      f"p99 {pct(xs, 99):.0f} ms, mean {statistics.fmean(xs):.0f} ms")
    finally:
        if proc is not None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(60)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
