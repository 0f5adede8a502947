"""``qa serve``: run the HTTP API and chat page with uvicorn.

The sub-command is registered in :mod:`qa.cli`, which imports this module only when it runs.
"""

from __future__ import annotations

import argparse


def server_url(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    return f"http://{shown}:{port}"


def run_server(args: argparse.Namespace) -> int:
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
