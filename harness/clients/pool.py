"""Keep geventhttpclient's keep-alive pool working past file descriptor 1023.

geventhttpclient checks a pooled socket before reuse with `select.select([sock], [], [], 0)`. `select()` cannot
take a descriptor >= 1024 (FD_SETSIZE): it raises ValueError, which the pool reads as "dead socket", closes it and
dials a new connection. A worker with more than ~500 users (each holding an HTTP and a Realtime socket) passes
fd 1024, after which every request opened a fresh TCP connection (and a resolver call): measured here as ~110 new
connections a second at 2,000 users, load-generator CPU spent on handshakes that real clients do not make.

`poll()` has no such limit. The original (not gevent-patched) poll with a zero timeout never blocks, so the check
stays as cheap and as strict as the library's: readable while idle means a FIN or stray bytes, so the socket is
dropped.
"""

from __future__ import annotations

from typing import Any

from gevent import monkey
from geventhttpclient.connectionpool import ConnectionPool

_poll = monkey.get_original("select", "poll")
_POLLIN: int = monkey.get_original("select", "POLLIN")
_DEAD = monkey.get_original("select", "POLLERR") | monkey.get_original("select", "POLLHUP")


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


def install() -> None:
    """Replace the pool's liveness check (idempotent; done when harness.clients.http is imported)."""
    ConnectionPool._is_socket_alive = lambda _self, sock: socket_is_reusable(sock)  # type: ignore[method-assign,assignment]
