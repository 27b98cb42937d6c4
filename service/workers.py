"""Several uvicorn workers, each with its own listening socket on one port (``SO_REUSEPORT``, Linux).

uvicorn's own ``--workers`` shares one socket between the processes, and the first one to call ``accept``
takes the connection. A client opening a few keep-alive connections at once (a load generator, a proxy's
pool) then often lands all of them on one worker while the other idles: measured here, 4 of 4 connections
on one worker in half the runs, and 25-35% less throughput in those. With a socket per worker the kernel
spreads connections over the workers by their addresses.

The supervisor starts the workers, restarts one that dies, and on SIGTERM or SIGINT stops them all
gracefully (each finishes its requests and saves its index snapshot) and exits 0.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger("trialsift.workers")

STOP_TIMEOUT = 60.0


def available() -> bool:
    """Whether the kernel balances connections over ``SO_REUSEPORT`` sockets (Linux does)."""
    return sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


def _bound(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` that shares the port with the other workers' sockets."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def check_port(host: str, port: int) -> None:
    """Raise ``OSError`` now if the port cannot be bound, rather than in every worker again and again."""
    # Bound, never listening: it takes no connection before it is closed.
    _bound(host, port).close()


def exit_cleanly(signum: int, frame: object) -> None:
    """A signal handler: exit 0. uvicorn re-raises the signal it stopped on with the handlers it found
    installed, so with this one a graceful shutdown ends in a clean exit, not a death by signal."""
    raise SystemExit(0)


def _worker(host: str, port: int, log_config: dict[str, Any]) -> None:
    import uvicorn

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, exit_cleanly)
    config = uvicorn.Config(
        "service.app:create_app", factory=True, access_log=False, log_config=log_config, lifespan="on"
    )
    sock = _bound(host, port)
    sock.listen(2048)
    uvicorn.Server(config).run(sockets=[sock])


def run(host: str, port: int, workers: int, log_config: dict[str, Any]) -> int:
    """Serve with ``workers`` processes until SIGTERM/SIGINT; 0 when every worker stopped cleanly."""
    check_port(host, port)
    ctx = multiprocessing.get_context("spawn")
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    previous: dict[signal.Signals, Callable[..., Any] | int | None] = {}
    for signum in (signal.SIGTERM, signal.SIGINT):
        previous[signum] = signal.signal(signum, stop)

    def start(n: int) -> multiprocessing.process.BaseProcess:
        proc = ctx.Process(target=_worker, args=(host, port, log_config), name=f"trialsift-worker-{n}")
        proc.start()
        return proc

    procs = [start(n) for n in range(workers)]
    log.info("serving on http://%s:%d with %d workers (SO_REUSEPORT)", host, port, workers)
    try:
        while not stopping:
            for n, proc in enumerate(procs):
                if not proc.is_alive() and not stopping:
                    log.error(
                        "worker %d (pid %s) exited with %s; starting another", n, proc.pid, proc.exitcode
                    )
                    procs[n] = start(n)
            time.sleep(0.2)
    finally:
        for proc in procs:
            if proc.is_alive() and proc.pid is not None:
                os.kill(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        for proc in procs:
            proc.join(timeout=max(0.0, deadline - time.monotonic()))
            if proc.is_alive():
                log.error("worker pid %s did not stop in %.0f s; killing it", proc.pid, STOP_TIMEOUT)
                proc.kill()
                proc.join()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 0 if all(proc.exitcode == 0 for proc in procs) else 1
