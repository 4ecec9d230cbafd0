"""python -m oms_emulator --host 127.0.0.1 --port PORT [--stack-delay S]
[--endpoint-address HOST] [--endpoint-port PORT]"""
from __future__ import annotations

import argparse
import errno
import ipaddress
import logging
import os
import signal
import socket
import sys
import threading
import time


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _port_free(host: str, port: int) -> bool:
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind((host, port))
        return True
    except OSError as e:
        return e.errno != errno.EADDRINUSE
    finally:
        s.close()


def _tick() -> None:
    from . import state

    log = logging.getLogger("oms_emulator")
    while True:
        time.sleep(0.1)
        with state.LOCK:
            try:
                state.advance()
            except Exception as e:  # noqa: BLE001
                log.error("timed work failed: %s", e)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="oms_emulator", description="OMS test-bed AWS emulator (moto + extension)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--stack-delay", type=float, default=2.0)
    p.add_argument("--endpoint-address", default=None)
    p.add_argument("--endpoint-port", type=int, default=None)
    p.add_argument("--snapshot-delay", type=float, default=1.0)
    p.add_argument("--quiet", action="store_true", help="no per-request log lines")
    args = p.parse_args(argv)

    t_start = time.time()
    if not _loopback(args.host):
        print(f"refusing to bind {args.host}: only loopback addresses are allowed", file=sys.stderr)
        return 2
    host = "127.0.0.1" if args.host == "localhost" else args.host
    # Fail fast, before the slow imports, if the port is taken.
    if not _port_free(host, args.port):
        print(f"port {host}:{args.port} is already in use", file=sys.stderr)
        return 1

    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    os.environ.setdefault("MOTO_PORT", str(args.port))
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING if args.quiet else logging.INFO)

    from . import state

    state.STARTUP_CONFIG.update(
        {
            "stack_delay_seconds": max(0.0, args.stack_delay),
            "endpoint_address": args.endpoint_address,
            "endpoint_port": args.endpoint_port,
            "snapshot_delay_seconds": max(0.0, args.snapshot_delay),
        }
    )
    state.reset_all()

    from .server import build_app, warm_up

    app = build_app()
    warm_up(app)

    from werkzeug.serving import make_server
    from moto.moto_server.werkzeug_app import MotoRequestHandler

    try:
        server = make_server(host, args.port, app, threaded=True, request_handler=MotoRequestHandler)
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            print(f"port {host}:{args.port} is already in use", file=sys.stderr)
            return 1
        print(f"cannot bind {host}:{args.port}: {e}", file=sys.stderr)
        return 1

    # Timed work (stack timelines, modifications) also runs without requests, so side effects
    # outside the emulator, such as a bound redis-server's passwords, change on time.
    threading.Thread(target=_tick, name="oms-tick", daemon=True).start()

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    print(f"oms_emulator listening on http://{host}:{args.port} (ready in {time.time() - t_start:.1f}s)", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
