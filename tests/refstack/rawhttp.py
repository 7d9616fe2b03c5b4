"""Raw HTTP/1.1 over a socket, for tests that must put bytes on the wire no client library would send (invalid
UTF-8 in a header, a request line with a lone-surrogate percent escape). One request per connection, bounded by
a timeout; the answer is parsed just enough to check status, headers and body."""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from typing import Any

TIMEOUT_S = 10.0
MAX_ANSWER_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class RawResponse:
    status: int
    headers: dict[str, str]
    """Lower-cased names; a repeated header keeps its last value."""
    body: bytes
    version: str = "HTTP/1.1"

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def refused_by_http_parser(self) -> bool:
        """aiohttp's HTTP parser refused the request line or a header before any route ran: it answers a plain
        `HTTP/1.0 400` (as Kong's nginx answers such requests with its own page), never the application's shape."""
        return (
            self.status == 400
            and self.version == "HTTP/1.0"
            and self.headers.get("content-type", "").startswith("text/plain")
        )


def request(
    port: int,
    method: bytes,
    target: bytes,
    headers: list[tuple[bytes, bytes]] | None = None,
    body: bytes = b"",
    host: str = "127.0.0.1",
) -> RawResponse:
    """Send one request with exactly these bytes (plus Host, Content-Length and Connection: close)."""
    lines = [method + b" " + target + b" HTTP/1.1", b"Host: " + host.encode()]
    lines += [name + b": " + value for name, value in headers or []]
    lines += [b"Content-Length: " + str(len(body)).encode(), b"Connection: close"]
    with socket.create_connection((host, port), timeout=TIMEOUT_S) as sock:
        sock.sendall(b"\r\n".join(lines) + b"\r\n\r\n" + body)
        answer = b""
        while len(answer) < MAX_ANSWER_BYTES and not _complete(answer, method):
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    status, parsed, rest = _parse(answer)
    if parsed.get("transfer-encoding", "").lower() == "chunked":
        rest = _unchunk(rest)
    return RawResponse(status, parsed, rest, answer.split(b" ", 1)[0].decode("latin-1"))


def _parse(answer: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, rest = answer.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    parsed = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        parsed[name.strip().lower()] = value.strip()
    return int(status_line.split(" ")[1]), parsed, rest


def _complete(answer: bytes, method: bytes) -> bool:
    """Whether `answer` is a whole response: a 101 (the socket stays open), or a body of the announced length."""
    if b"\r\n\r\n" not in answer:
        return False
    status, headers, rest = _parse(answer)
    if status == 101 or method == b"HEAD" or status in (204, 304):
        return True
    if "content-length" in headers:
        return len(rest) >= int(headers["content-length"])
    if headers.get("transfer-encoding", "").lower() == "chunked":
        return rest.endswith(b"0\r\n\r\n")
    return False


def _unchunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out += data[:size]
        data = data[size + 2 :]
    return out
