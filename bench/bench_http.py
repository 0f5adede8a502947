"""HTTP latency benchmark of POST /ask on loopback.

Starts its own server (``qa serve``) on a free 127.0.0.1 port, waits until /ready, then for each
concurrency level sends a bounded number of questions with that many concurrent clients (httpx)
and prints latency p50/p95/max and throughput. Figures only, no asserts.

    python bench/bench_http.py                      # 40 requests at 1 and at 8 clients
    python bench/bench_http.py --requests 80 --concurrency 1 4 8
    python bench/bench_http.py --url http://127.0.0.1:8000   # an already running server
    python bench/bench_http.py --seed-questions --temp-index --concurrency 1 8 32   # what `make bench` runs

The server uses the usual settings (QA_* environment variables), so by default it serves seeds/
with the index in index/ (built on first run). The questions repeat, so with the answer cache on (the
default) most requests are cache hits: QA_ANSWER_CACHE_SIZE=0 times the pipeline itself.
``--seed-questions`` asks the 120 distinct questions of eval/seeds_qa.jsonl instead (in order, wrapping
around); ``--temp-index`` serves seeds/ from an index built in a temporary folder (index/ is left alone).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qa import machine  # noqa: E402 - after the path: this checkout's qa, not an installed one
QUESTIONS = [
    "When did the protests in Kazakhstan begin?",
    "Why did people protest in Kazakhstan?",
    "Who is the first president of Kazakhstan?",
    "What did Lukashenko discuss with Nazarbayev?",
    "How many security forces were killed during the protests?",
    "Which building did protesters break into in Almaty?",
    "What did President Tokayev introduce?",
    "Who are the peacekeepers sent by?",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(timeout: float, index_dir: str | None = None) -> tuple[subprocess.Popen, str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    if index_dir is not None:
        env["QA_INDEX_DIR"] = index_dir
    proc = subprocess.Popen(
        [sys.executable, "-m", "qa.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"qa serve exited with {proc.returncode}")
        try:
            r = httpx.get(url + "/ready", timeout=5)
            if r.status_code == 200:
                return proc, url
            if r.json().get("status") == "failed":
                stop_server(proc)
                raise SystemExit(f"server not ready: {r.json().get('reason')}")
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    stop_server(proc)
    raise SystemExit("server did not become ready in time")


def stop_server(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(proc.pid, signal.SIGKILL)


def percentile(values: list[float], p: float) -> float:
    s = sorted(values)
    k = (len(s) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def process_cpu_s(pid: int | None) -> float | None:
    """User + system CPU seconds of process ``pid`` (all its threads) so far, from /proc; None where unreadable."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


async def run_level(url: str, concurrency: int, n_requests: int, questions: list[str] = QUESTIONS,
                    server_pid: int | None = None) -> dict:
    latencies: list[float] = []
    errors = 0
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(n_requests):
        queue.put_nowait(i)

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal errors
        while True:
            try:
                i = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            t0 = time.perf_counter()
            r = await client.post("/ask", json={"question": questions[i % len(questions)]})
            dt = time.perf_counter() - t0
            if r.status_code == 200:
                latencies.append(dt * 1000)
            else:
                errors += 1

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=300, limits=limits) as client:
        await client.post("/ask", json={"question": "Warm-up: who wrote these documents?"})  # warm the connection
        t0, client0, server0 = time.perf_counter(), time.process_time(), process_cpu_s(server_pid)
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        wall = time.perf_counter() - t0
        client_cpu, server1 = time.process_time() - client0, process_cpu_s(server_pid)
    return {
        "concurrency": concurrency,
        "requests": n_requests,
        "errors": errors,
        "p50_ms": round(statistics.median(latencies), 1) if latencies else None,
        "p95_ms": round(percentile(latencies, 95), 1) if latencies else None,
        "max_ms": round(max(latencies), 1) if latencies else None,
        "req_per_s": round(len(latencies) / wall, 2) if wall else None,
        "wall_s": round(wall, 2),
        # CPU time per request: the server's (None when it was not started here) and this load generator's,
        # which shares the machine's cores with the server
        "server_cpu_ms": round((server1 - server0) * 1000 / n_requests, 1) if server0 is not None and server1 else None,
        "client_cpu_ms": round(client_cpu * 1000 / n_requests, 1),
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=40, help="requests per concurrency level (default 40)")
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 8], help="client counts (default 1 8)")
    ap.add_argument("--url", help="benchmark a running server instead of starting one")
    ap.add_argument("--ready-timeout", type=float, default=900, help="seconds to wait for /ready")
    ap.add_argument("--json", action="store_true", help="print the results as JSON too")
    ap.add_argument("--seed-questions", action="store_true",
                    help="ask the distinct questions of eval/seeds_qa.jsonl (default: 8 questions repeated)")
    ap.add_argument("--temp-index", action="store_true",
                    help="serve from an index built in a temporary folder (default: QA_INDEX_DIR / index/)")
    args = ap.parse_args(argv)
    questions = QUESTIONS
    if args.seed_questions:
        lines = (ROOT / "eval" / "seeds_qa.jsonl").read_text(encoding="utf-8").splitlines()
        questions = [json.loads(x)["question"] for x in lines if x.strip()]

    import tempfile

    proc = None
    url = args.url
    tmp = tempfile.TemporaryDirectory() if args.temp_index and url is None else None
    if url is None:
        print("starting qa serve (first run builds the index)…", flush=True)
        proc, url = start_server(args.ready_timeout, str(Path(tmp.name) / "index") if tmp else None)
    try:
        ready = httpx.get(url + "/ready", timeout=10).json()
        print(f"server {url}: {ready.get('documents')} documents; {os.cpu_count()} CPUs, "
              f"{platform.processor() or platform.machine()}, Python {platform.python_version()}; "
              f"{len(questions)} distinct questions; answer cache size "
              f"{os.environ.get('QA_ANSWER_CACHE_SIZE', 'default (256)')}; reader {ready.get('reader_runtime')} "
              f"(token keep {ready.get('reader_token_keep')}), busy cascade: first "
              f"{ready.get('busy_first_passages')} passage(s), "
              f"QA_ASK_CONCURRENCY {os.environ.get('QA_ASK_CONCURRENCY', 'auto')}")
        print(f"machine{' (this client; the server runs elsewhere)' if args.url else ''}: {machine.summary()}")
        print(f"{'clients':>7} {'requests':>8} {'errors':>6} {'p50 ms':>9} {'p95 ms':>9} {'max ms':>9} {'req/s':>7} {'server CPU ms/req':>17} {'client CPU ms/req':>17}")
        results = []
        for c in args.concurrency:
            r = asyncio.run(run_level(url, c, args.requests, questions, proc.pid if proc is not None else None))
            results.append(r)
            print(f"{r['concurrency']:>7} {r['requests']:>8} {r['errors']:>6} {r['p50_ms']!s:>9} "
                  f"{r['p95_ms']!s:>9} {r['max_ms']!s:>9} {r['req_per_s']!s:>7} {r['server_cpu_ms']!s:>17} "
                  f"{r['client_cpu_ms']!s:>17}", flush=True)
        if args.json:
            print(json.dumps(results, indent=2))
    finally:
        if proc is not None:
            stop_server(proc)
        if tmp is not None:
            tmp.cleanup()


if __name__ == "__main__":
    main()
