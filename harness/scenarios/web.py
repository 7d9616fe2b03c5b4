"""The web app as a browser loads it through the edge, with the deployment's header promises checked.

    GET /                      no-cache, ETag, Vary: Accept-Encoding, compressed, security headers
    GET /flutter_bootstrap.js  no-cache, compressed          GET /manifest.json   no-cache, compressed
    GET /assets/main.<h>.js    public, max-age=31536000, immutable, compressed     (paths read from index.html)
    GET /assets/fonts/…woff2   immutable, not re-compressed (woff2 is compressed already)
    GET /main.dart.js + If-None-Match: <its ETag>   → 304 (a returning visitor's revalidation)

Each request fires one `WEB <name>` event; a wrong status or header makes it a failure whose message names the
header, what came and what was expected: `WEB index.html: 200 bad_header "Cache-Control is 'max-age=60',
expected no-cache"`. "Compressed" means the best encoding the client accepts among br and gzip. Only the index is
decompressed (its asset paths are read); the other bodies are left as they came and counted in wire bytes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from harness.clients.events import Reporter, RequestFailed
from harness.clients.http import Reply, Transport
from harness.scenarios.viewer import viewer_headers

if TYPE_CHECKING:
    from locust import User

    from harness.scenarios.runstate import RunState

REQUEST_TYPE = "WEB"
NO_CACHE = "no-cache"
IMMUTABLE = ("max-age=31536000", "immutable")
SECURITY_HEADERS: Mapping[str, str] = {
    "Strict-Transport-Security": "max-age=",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "",
    "Content-Security-Policy": "",
}
"""Headers the index must carry (value must contain the given text; "" = any value)."""

_PRELOAD = re.compile(r'href="(/assets/[^"]+)"')


def expected_encoding(accept_encoding: str) -> str:
    """br > gzip > identity among what `accept_encoding` allows (q=0 refuses; `*` allows anything unnamed)."""
    q: dict[str, float] = {}
    for part in accept_encoding.split(","):
        token, _, params = part.strip().partition(";")
        value = 1.0
        for param in params.split(";"):
            key, _, number = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    value = float(number)
                except ValueError:
                    value = 0.0
        if token.strip():
            q[token.strip().lower()] = value
    for encoding in ("br", "gzip"):
        if q.get(encoding, q.get("*", 0.0)) > 0:
            return encoding
    return "identity"


@dataclass(frozen=True)
class Expect:
    """What one response must look like."""

    status: int = 200
    cache: tuple[str, ...] = ()
    """Texts Cache-Control must contain."""
    compressed: bool = False
    etag: bool = False
    security: bool = False


def check(reply: Reply, expect: Expect, encoding: str) -> str | None:
    """The first broken promise as text, or None."""
    headers = reply.headers
    if reply.status != expect.status:
        return f"status {reply.status}, expected {expect.status}"
    cache_control = headers.get("Cache-Control", "")
    for text in expect.cache:
        if text not in cache_control:
            return f"Cache-Control is {cache_control!r}, expected {', '.join(expect.cache)}"
    if expect.etag and not headers.get("ETag"):
        return "no ETag, expected one (browsers revalidate with it)"
    if reply.status == 200:
        got = headers.get("Content-Encoding", "identity") or "identity"
        want = encoding if expect.compressed else "identity"
        if got != want:
            return f"Content-Encoding is {got!r}, expected {want!r}"
        if expect.compressed and want != "identity" and "accept-encoding" not in headers.get("Vary", "").lower():
            return f"Vary is {headers.get('Vary', '')!r}, expected it to name Accept-Encoding"
    if expect.security:
        for name, text in SECURITY_HEADERS.items():
            value = headers.get(name)
            if value is None or text not in value:
                return f"{name} is {value!r}, expected a value containing {text!r}" if value else f"no {name}"
    return None


class WebShell:
    """One visitor of the web app (its own connection pool, like a browser)."""

    def __init__(self, transport: Transport, accept_encoding: str, headers: Mapping[str, str] | None = None) -> None:
        self.transport = transport
        self.accept_encoding = accept_encoding
        self.encoding = expected_encoding(accept_encoding)
        self.headers = dict(headers or {})
        self.assets: list[str] = []
        """Hashed asset paths read from the index (main JS, font)."""
        self.etag: str | None = None

    @property
    def reporter(self) -> Reporter:
        return self.transport.reporter

    def get(
        self, name: str, path: str, expect: Expect, extra: Mapping[str, str] | None = None, *, read: bool = False
    ) -> Reply:
        """One request. Only a body the visitor `read`s (the index, for its asset paths) is decompressed: the
        others' bytes are counted as they came on the wire, and decompressing a 2 MB bundle per visit cost the
        generator more CPU than any other request (docs/BENCHMARKS.md)."""
        headers = {"Accept-Encoding": self.accept_encoding, **self.headers, **(extra or {})}
        reply = self.transport.call(
            REQUEST_TYPE, name, "GET", path, headers=headers, binary=True, decode=read, fire=False
        )
        error = reply.error if reply.status == 0 else None  # a status is judged by `expect`, 304 included
        if error is None:
            problem = check(reply, expect, self.encoding)
            if problem is not None:
                error = RequestFailed(f"{REQUEST_TYPE} {name}", reply.status, "bad_header", problem)
        self.reporter.fire(
            REQUEST_TYPE, name, reply.elapsed_ms, exception=error,
            response_length=len(reply.body) if isinstance(reply.body, bytes) else 0,
            context={"origin_region": reply.origin_region, "content_encoding": reply.headers.get("Content-Encoding"),
                     **reply.leg_context()},
        )  # fmt: skip
        reply.error = error
        return reply

    def load(self) -> bool:
        """A first visit: the index, then what it references. True when every response kept its promises."""
        index_expect = Expect(cache=(NO_CACHE,), compressed=True, etag=True, security=True)
        index = self.get("index.html", "/", index_expect, read=True)
        if index.ok and isinstance(index.body, bytes):
            self.assets = _PRELOAD.findall(index.body.decode("utf-8", "replace"))
        ok = index.ok
        ok &= self.get("flutter_bootstrap.js", "/flutter_bootstrap.js", Expect(cache=(NO_CACHE,), compressed=True)).ok
        ok &= self.get("manifest.json", "/manifest.json", Expect(cache=(NO_CACHE,), compressed=True)).ok
        for path in self.assets:
            font = path.endswith(".woff2")
            name = "asset font" if font else "asset js"
            ok &= self.get(name, path, Expect(cache=IMMUTABLE, compressed=not font)).ok
        return bool(ok)

    def revalidate(self) -> bool:
        """A returning visit: the un-hashed bundle with its ETag must be 304 Not Modified."""
        if self.etag is None:
            first = self.get("main.dart.js", "/main.dart.js", Expect(cache=(NO_CACHE,), compressed=True, etag=True))
            self.etag = first.headers.get("ETag") if first.ok else None
            return first.ok
        extra = {"If-None-Match": self.etag}  # with the visitor's Accept-Encoding, as a browser revalidates
        return self.get("main.dart.js revalidate", "/main.dart.js", Expect(status=304), extra).ok

    def close(self) -> None:
        self.transport.close()


def web_shell_for(user: User, state: RunState, number: int) -> WebShell:
    """A visitor for Locust user `number`: the web URL (https://DOMAIN_NAME, else SUPABASE_URL) and its group."""
    target = state.target
    assert target is not None
    group, country = state.viewer(number)
    url = f"https://{target.domain_name}" if target.domain_name else target.supabase_url
    reporter = Reporter(environment=user.environment, user_class=type(user).__name__, group=group)
    transport = Transport(url, reporter, region_header=target.names.region_header)
    return WebShell(transport, state.settings.accept_encoding, viewer_headers(country))
