"""Property-based fuzzing of every route of the embedded Toxiproxy API (issue 14): random methods, paths, query
strings, headers and bodies (invalid UTF-8, lone surrogates, NaN, 10**400, 2**63, deep nesting, oversize).

Every answer is below 500 and, when an error, in Toxiproxy's shape; after a failed request `GET /proxies` still
answers 200 with strict JSON and the state is exactly what it was. A request that succeeds is undone before the
next example, so every example starts from the same one proxy with one toxic.

No example can make the server resolve a host name: `listen` only ever holds an IP literal or a malformed address,
and the free-form bodies leave out the word `listen` (the network rule: loopback only).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from test_toxiproxy_bad_input import strict_json

from harness.network.toxiproxy import build_app
from harness.network.toxiproxy.api import COLLECTION
from harness.procs.serving import BackgroundServer, background

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
PROXY, TOXIC = "fz", "fz_latency"
UPSTREAM = "127.0.0.1:1"  # never dialled: no example connects to a proxy
PLAIN_TEXT_ERRORS = {"404 page not found\n", "User agent not allowed\n"}  # gorilla/mux's 404, the browser block
UNKNOWN_METHOD = "Invalid method encountered"
"""aiohttp's HTTP parser answers a method it does not know with a plain 400 before any route runs (Go's server
would route it and answer 405)."""


@dataclass
class Target:
    server: BackgroundServer
    client: httpx.Client
    state: object = None

    def reset(self) -> None:
        """Back to one proxy with one toxic, whatever the last successful request did."""

        async def clear() -> None:
            collection = self.server.app[COLLECTION]  # type: ignore[index]
            for name in list(collection.proxies):  # names with "/" have no API route to delete them by
                await collection.remove(name)

        self.server.call(clear)
        created = self.client.post("/proxies", json={"name": PROXY, "upstream": UPSTREAM, "listen": "127.0.0.1:0"})
        assert created.status_code == 201, created.text
        toxic = {"name": TOXIC, "type": "latency", "attributes": {"latency": 1}}
        assert self.client.post(f"/proxies/{PROXY}/toxics", json=toxic).status_code == 200
        self.state = self.proxies()

    def proxies(self) -> object:
        resp = self.client.get("/proxies")
        assert resp.status_code == 200, resp.text
        return strict_json(resp.text)

    def check(self, method: str, url: str, content: bytes, headers: dict[str, bytes] | None = None) -> None:
        resp = self.client.request(method, url, content=content, headers=headers)
        assert resp.status_code < 500, (method, url, content[:200], resp.status_code, resp.text[:300])
        has_body = method != "HEAD" and resp.status_code != 405  # Go's 405 has no body either
        plain = resp.text in PLAIN_TEXT_ERRORS or resp.text.startswith(UNKNOWN_METHOD)
        if resp.status_code >= 400 and has_body and not plain:
            body = strict_json(resp.text)
            assert isinstance(body, dict) and isinstance(body["error"], str), resp.text
            assert body["status"] == resp.status_code, resp.text
        if resp.status_code >= 400 or method in ("GET", "HEAD"):
            assert self.proxies() == self.state, (method, url, content[:200], resp.text[:300])
        else:
            self.proxies()  # still valid JSON
            self.reset()


@pytest.fixture(scope="module")
def target() -> Iterator[Target]:
    with background(build_app) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        target = Target(server, client)
        target.reset()
        yield target


# -- JSON text built from pieces, so that what json.dumps would refuse (NaN, lone surrogates) can be sent --------
def _quoted(text: str) -> str:
    return json.dumps(text)  # ensure_ascii: a lone surrogate becomes a "\ud800" escape


ODD_NUMBERS = ["NaN", "Infinity", "-Infinity", "1e400", "-1e400", "1e-400", "-0", "0.5", "-1", "1.0"]
ODD_NUMBERS += [str(2**63), str(2**63 - 1), str(-(2**63)), str(-(2**63) - 1), "1" + "0" * 400, "9" * 5000]
texts = st.text(alphabet=st.characters(codec="utf-16"), max_size=12)  # lone surrogates included
numbers = st.one_of(st.sampled_from(ODD_NUMBERS), st.integers().map(str), st.floats(allow_nan=False).map(repr))
numbers = numbers.map(lambda n: {"inf": "1e400", "-inf": "-1e400"}.get(n, n))
raw_strings = texts.map(lambda t: '"' + t.replace("\\", "").replace('"', "") + '"')  # raw surrogates: invalid UTF-8
scalars = st.one_of(st.sampled_from(["null", "true", "false", '""']), numbers, texts.map(_quoted), raw_strings)
FIELDS = ["name", "upstream", "enabled", "type", "stream", "toxicity", "attributes", "latency", "jitter", "rate"]
keys = st.one_of(st.sampled_from(FIELDS), texts).map(_quoted)


def _array(items: list[str]) -> str:
    return "[" + ",".join(items) + "]"


def _object(pairs: list[tuple[str, str]]) -> str:
    return "{" + ",".join(f"{k}:{v}" for k, v in pairs) + "}"


json_texts = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4).map(_array) | st.lists(st.tuples(keys, inner), max_size=4).map(_object),
    max_leaves=12,
)
deep = st.tuples(st.integers(1, 200_000), st.sampled_from(["[", '{"a":'])).map(
    lambda t: t[1] * t[0] + ("1" if t[1] != "[" else "") + ("]" if t[1] == "[" else "}") * t[0]
)

# -- bodies shaped like the API's own, with odd values in every field -----------------------------------------------
LISTENS = ['""', '"127.0.0.1:0"', '":0"', '"no-port"', '"127.0.0.1:99999"', '"[::1"', '"1::2:0"', '"127.0.0.1:x"']
LISTENS += ['"127.0.0.1:-1"', '"0:0:0"', '"[127.0.0.1]:0"', '"127.0.0.1:0\\ud800"', "null", "5", "[]"]
names = st.one_of(st.sampled_from([_quoted(PROXY), _quoted(TOXIC), '""', '"a/b"']), scalars)
booleans = st.one_of(st.sampled_from(["true", "false", '"true"', "0", "null"]), scalars)


def _fields_of(fields: dict[str, st.SearchStrategy[str]], max_size: int) -> st.SearchStrategy[str]:
    """JSON objects of some of `fields` (a key may repeat: the last one counts, in Go as here)."""
    pairs = [st.tuples(st.just(_quoted(key)), values) for key, values in fields.items()]
    return st.lists(st.one_of(pairs), max_size=max_size).map(_object)


proxy_bodies = _fields_of(
    {"name": names, "upstream": scalars, "listen": st.sampled_from(LISTENS), "enabled": booleans}, max_size=5
)
ATTRIBUTES = ["latency", "jitter", "rate", "delay", "timeout", "average_size", "size_variation", "bytes", "x"]
attributes = st.one_of(_fields_of({name: st.one_of(numbers, scalars) for name in ATTRIBUTES}, max_size=4), json_texts)
TYPES = ["latency", "bandwidth", "slow_close", "timeout", "reset_peer", "slicer", "limit_data", "noop", "nope", ""]
STREAMS = ["upstream", "downstream", "x"]
toxic_bodies = _fields_of(
    {
        "name": names,
        "type": st.one_of(st.sampled_from(TYPES).map(_quoted), scalars),
        "stream": st.one_of(st.sampled_from(STREAMS).map(_quoted), scalars),
        "toxicity": st.one_of(numbers, scalars),
        "attributes": attributes,
    },
    max_size=6,
)


ROUTES = [
    ("POST", "/proxies", proxy_bodies),
    ("POST", "/populate", st.lists(proxy_bodies, max_size=4).map(_array)),
    ("PATCH", f"/proxies/{PROXY}", proxy_bodies),
    ("POST", f"/proxies/{PROXY}", proxy_bodies),
    ("POST", f"/proxies/{PROXY}/toxics", toxic_bodies),
    ("PATCH", f"/proxies/{PROXY}/toxics/{TOXIC}", toxic_bodies),
    ("POST", f"/proxies/{PROXY}/toxics/{TOXIC}", toxic_bodies),
]


@FUZZ
@given(data=st.data(), route=st.sampled_from(ROUTES))
def test_shaped_bodies_on_every_write_route(target: Target, data: st.DataObject, route: tuple) -> None:
    method, path, bodies = route
    body = data.draw(bodies, label="body")
    target.check(method, path, body.encode("utf-8", "surrogatepass"))


SEGMENTS = ["proxies", "toxics", "populate", "reset", "version", "metrics", PROXY, TOXIC, "", "..", "%ff", "%00"]
SEGMENTS += ["%2F", "%2e%2e", "a b", "\u00e9", "%ed%a0%80"]
url_text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cc", "Cs")), max_size=8)  # httpx's limit
paths = st.lists(st.one_of(st.sampled_from(SEGMENTS), url_text), min_size=1, max_size=5).map(
    lambda parts: "/" + "/".join(parts)
)
methods = st.sampled_from(["GET", "POST", "PATCH", "PUT", "DELETE", "HEAD", "OPTIONS", "TRACE", "FOO"])
header_values = st.binary(max_size=24).map(lambda b: bytes(c for c in b if c >= 0x20 and c != 0x7F).strip())
header_names = st.sampled_from(["User-Agent", "Content-Type", "Accept", "Origin", "Cookie", "X-Forwarded-For", "X-Fz"])
bodies = st.one_of(
    st.binary(max_size=64),
    json_texts.map(lambda t: t.encode("utf-8", "surrogatepass")),
    deep.map(str.encode),
    st.just(b""),
)


@FUZZ
@given(
    method=methods,
    path=paths,
    query=st.lists(st.tuples(url_text, url_text), max_size=3),
    headers=st.dictionaries(header_names, header_values, max_size=3),
    body=bodies,
)
def test_any_request_to_any_path(
    target: Target, method: str, path: str, query: list, headers: dict[str, bytes], body: bytes
) -> None:
    assume(b"listen" not in body.lower())  # a free-form listen could name a host to resolve
    # An absolute URL: a path starting "//" must stay a path, not become a host.
    url = httpx.URL(str(target.client.base_url).rstrip("/") + path).copy_merge_params(query)
    target.check(method, str(url), body, headers)


@FUZZ
@given(body=bodies, route=st.sampled_from(ROUTES))
def test_unshaped_bodies_on_every_write_route(target: Target, body: bytes, route: tuple) -> None:
    assume(b"listen" not in body.lower())
    target.check(route[0], route[1], body)


@pytest.mark.parametrize(("method", "path", "_"), ROUTES)
def test_oversize_bodies_get_413_in_toxiproxy_shape(target: Target, method: str, path: str, _: object) -> None:
    oversize = b'{"name":"' + b"x" * (1 << 20) + b'"}'
    resp = target.client.request(method, path, content=oversize)
    assert resp.status_code == 413, resp.text
    assert strict_json(resp.text) == {"error": resp.json()["error"], "status": 413}
    assert resp.json()["error"].startswith("bad request body: Maximum request body size 1048576 exceeded")
    assert target.proxies() == target.state
