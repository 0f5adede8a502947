"""``qa serve``: run the HTTP API and chat page with uvicorn.

The sub-command is registered in :mod:`qa.cli`, which imports this module only when it runs.
"""

from __future__ import annotations

import argparse


def server_url(host: str, port: int) -> str:
    """A URL a browser on this machine can open (a wildcard address becomes 127.0.0.1)."""
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else "::1" if host == "::" else host
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    return f"http://{shown}:{port}"


def banner(settings) -> list[str]:
    """What `qa serve` says about who can reach it and what they may do."""
    from api.security import access_policy, allowed_hosts, is_loopback

    host = settings.host
    lines = []
    if host in ("0.0.0.0", "::", ""):
        lines.append(f"WARNING: listening on every network interface ({host or '0.0.0.0'}), not just this machine")
    elif not is_loopback(host):
        lines.append(f"WARNING: listening on {host}, reachable from other machines")
    lines.append(f"Access: {access_policy(settings).describe()}")
    lines.append(f"Allowed Host headers: {', '.join(allowed_hosts(settings))} (QA_ALLOWED_HOSTS)")
    return lines


def cannot_listen(host: str, port: int) -> str | None:
    """Why uvicorn could not listen on ``host:port``, said with what to do (None: it can). Tried with a socket
    bound as uvicorn binds it, before anything is printed or loaded: uvicorn itself raises OverflowError for a
    port out of range and logs a bare errno line after start-up for a port in use or an unknown address."""
    import errno
    import socket

    if not 1 <= port <= 65535:
        return f"--port {port} is not a port: give one from 1 to 65535 (--port or QA_PORT)"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            return (f"port {port} on {host} is in use (another `qa serve`?): stop that server, or choose another "
                    "port with --port (QA_PORT)")
        why = e.strerror or str(e)
        return (f"cannot listen on {host}:{port} ({why}): give --host (QA_HOST) an address of this machine, such "
                "as 127.0.0.1 or 0.0.0.0 for every interface" + (", and --port one above 1023 unless root"
                                                                   if e.errno == errno.EACCES else ""))
    return None


def run_server(args: argparse.Namespace) -> int:
    import logging
    import sys

    problem = cannot_listen(args.host, args.port)
    if problem:
        print(f"qa: error: {problem}", file=sys.stderr, flush=True)
        return 1

    import uvicorn

    from api.app import create_app
    from qa.config import get_settings

    settings = get_settings().model_copy(update={"host": args.host, "port": args.port})
    url = server_url(args.host, args.port)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("faiss").setLevel(logging.WARNING)  # its loader logs every CPU probe at INFO
    print(f"Listening on {args.host}:{args.port} ({url}); warming up in the background: corpus "
          f"{settings.corpus_dir}, index {settings.index_dir} (the first run builds the index). "
          "/health answers now, /ready once loaded.", flush=True)
    for line in banner(settings):
        print(line, flush=True)

    def on_ready(service) -> None:
        if service.status == "ready":
            print(f"Serving on {url} — open it in a browser", flush=True)
        else:
            print(f"NOT READY: {service.reason}", flush=True)
            print(f"Serving on {url} anyway: /health answers, /ready and /ask answer 503 with the reason; "
                  "a new index version (e.g. from `qa index`) is picked up without a restart", flush=True)

    from api.connections import HeadTimeoutH11Protocol

    app = create_app(settings, on_ready=on_ready)
    # SIGTERM/Ctrl-C: stop accepting, let requests finish (at most 60 s), then the running write and the queued ones
    # (a second Ctrl-C: the running one only). A connection that sends no complete request head in 10-20 s is closed
    # (api.connections).
    server = uvicorn.Server(uvicorn.Config(app, host=args.host, port=args.port, log_level=args.log_level,
                                           timeout_graceful_shutdown=60, http=HeadTimeoutH11Protocol))
    app.state.service.force_exit = lambda: server.force_exit
    server.run()
    if server.force_exit:  # a second Ctrl-C before the app's shutdown began: uvicorn skipped it
        app.state.service.writes.drop_queued()  # the running write still finishes as the process exits
    return 0
