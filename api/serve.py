"""``qa serve``: run the HTTP API and chat page with uvicorn (registered in qa/cli.py)."""

from __future__ import annotations

import argparse


def add_serve_command(subparsers) -> argparse.ArgumentParser:
    from qa.config import get_settings

    s = get_settings()
    p = subparsers.add_parser(
        "serve",
        help="serve the HTTP API and chat page",
        description=(
            "Serve the HTTP API and the chat page. On first run the index is built from the corpus "
            "folder (QA_CORPUS_DIR, default seeds/) into QA_INDEX_DIR before the server listens."
        ),
    )
    p.add_argument("--host", default=s.host, help=f"interface to listen on (default {s.host}; QA_HOST)")
    p.add_argument("--port", type=int, default=s.port, help=f"port (default {s.port}; QA_PORT)")
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    p.set_defaults(handler=cmd_serve)
    return p


def server_url(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    return f"http://{shown}:{port}"


def cmd_serve(args: argparse.Namespace) -> int:
    import logging

    import uvicorn

    from api.app import create_app
    from qa.config import get_settings

    settings = get_settings()
    url = server_url(args.host, args.port)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("faiss").setLevel(logging.WARNING)  # its loader logs every CPU probe at INFO
    print(
        f"Loading the index and models (corpus {settings.corpus_dir}, index {settings.index_dir}; "
        "the first run builds the index)…",
        flush=True,
    )

    def on_ready(service) -> None:
        if service.status == "ready":
            print(f"Serving on {url} — open it in a browser", flush=True)
        else:
            print(f"NOT READY: {service.reason}", flush=True)
            print(f"Serving on {url} anyway: /health answers, /ready and /ask answer 503 with the reason",
                  flush=True)

    app = create_app(settings, on_ready=on_ready)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    return 0
