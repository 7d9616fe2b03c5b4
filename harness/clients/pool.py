"""Keep geventhttpclient's keep-alive pool working past file descriptor 1023.

geventhttpclient checks a pooled socket before reuse with `select.select([sock], [], [], 0)`. `select()` cannot
take a descriptor >= 1024 (FD_SETSIZE): it raises ValueError, which the pool reads as "dead socket", closes it and
dials a new connection. A worker with more than ~500 users (each holding an HTTP and a Realtime socket) passes
fd 1024, after which every request opened a fresh TCP connection (and a resolver call): measured here as ~110 new
connections a second at 2,000 users, load-generator CPU spent on handshakes that real clients do not make.

`poll()` has no such limit. The original (not gevent-patched) poll with a zero timeout never blocks, so the check
stays as cheap and as strict as the library's: readable while idle means a FIN or stray bytes, so the socket is
dropped.

The pool also times every connection it opens (`connect_ms`): `_create_socket` (DNS + TCP connect + TLS when
https) is wrapped with two monotonic clock reads, and the figure is kept per socket until the request that got
the socket asks for it (`take_connect_ms`). A reused keep-alive socket has no entry, so its request reads None:
that is how a request knows it reused a connection. Only new connections cost a dict entry; a socket closed
before anyone asked (a failed send) drops its entry in `release_socket`.
"""

from __future__ import annotations

import time
from typing import Any

from gevent import monkey
from geventhttpclient.connectionpool import ConnectionPool

_poll = monkey.get_original("select", "poll")
_POLLIN: int = monkey.get_original("select", "POLLIN")
_DEAD = monkey.get_original("select", "POLLERR") | monkey.get_original("select", "POLLHUP")
_perf = time.perf_counter
_OPENED = "harness_opened"
"""Pool attribute: socket → ms its connect took, for sockets whose first request has not asked yet."""
_original_create = ConnectionPool._create_socket
_original_release = ConnectionPool.release_socket


def socket_is_reusable(sock: Any) -> bool:
    """True when an idle pooled socket is open and has nothing to read (same verdicts as the library's check)."""
    if sock is None:
        return False
    try:
        fd = sock.fileno()
        if fd < 0:
            return False
        poller = _poll()
        poller.register(fd, _POLLIN)
        events = poller.poll(0)
    except (OSError, ValueError):
        return False
    return not any(mask & (_POLLIN | _DEAD) for _fd, mask in events)


def _timed_create(pool: ConnectionPool) -> Any:
    started = _perf()
    sock = _original_create(pool)
    opened = pool.__dict__.get(_OPENED)
    if opened is None:
        opened = pool.__dict__[_OPENED] = {}
    opened[sock] = (_perf() - started) * 1000
    return sock


def _release(pool: ConnectionPool, sock: Any) -> None:
    opened = pool.__dict__.get(_OPENED)
    if opened:
        opened.pop(sock, None)
    _original_release(pool, sock)


def take_connect_ms(response: Any) -> float | None:
    """How long opening the connection of `response` (a geventhttpclient pool response whose headers came) took,
    once: None when the connection was reused, or when it is not a pooled response."""
    pool = getattr(response, "_pool", None)
    if pool is None:
        return None
    opened = pool.__dict__.get(_OPENED)
    if not opened:
        return None
    ms: float | None = opened.pop(response._sock, None)
    return ms


def install() -> None:
    """Replace the pool's liveness check and time its connects (idempotent; done when harness.clients.http is
    imported)."""
    ConnectionPool._is_socket_alive = lambda _self, sock: socket_is_reusable(sock)  # type: ignore[method-assign,assignment]
    ConnectionPool._create_socket = _timed_create  # type: ignore[method-assign,assignment]
    ConnectionPool.release_socket = _release  # type: ignore[method-assign,assignment]
