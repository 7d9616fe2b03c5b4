"""The one client the harness uses to drive a Toxiproxy 2.x server, embedded or real (API: docs/protocols.md §8).

Why not toxiproxy-python: no timeouts, class-level shared host/port, misleading error types, no PATCH, and a
`populate` that is not `/populate` (docs/protocols.md §8.3). This client uses httpx with a timeout on every call and
turns every failure into `NetworkShapingError` carrying the server's own message.

    harness ──httpx──► Toxiproxy API (:8474) ──► proxy listen 127.0.0.1:N ──toxics──► upstream (the target)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from harness.errors import NetworkShapingError
from harness.network.profiles import NetworkProfile
from harness.network.render import toxiproxy_toxics

DEFAULT_URL = "http://127.0.0.1:8474"
"""Toxiproxy's default API address."""

TIMEOUT_S = 5.0
"""Bound on every API call (connect, read, write). The real server's own handler timeout is 25 s."""

USER_AGENT = "harness-toxiproxy-client"
"""Not `Mozilla/…`: real Toxiproxy refuses browser user agents with 403."""


@dataclass(frozen=True)
class Proxy:
    name: str
    listen: str
    upstream: str
    enabled: bool = True
    toxics: tuple[dict[str, Any], ...] = field(default=())

    @property
    def listen_port(self) -> int:
        return int(self.listen.rsplit(":", 1)[1])

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Proxy:
        # Unknown fields (e.g. the real server's empty "Logger") are ignored on purpose.
        return cls(
            name=str(data["name"]),
            listen=str(data["listen"]),
            upstream=str(data["upstream"]),
            enabled=bool(data.get("enabled", True)),
            toxics=tuple(data.get("toxics") or ()),
        )


class ToxiproxyClient:
    """`with ToxiproxyClient(url) as tp:` — every method raises NetworkShapingError on failure."""

    def __init__(
        self, base_url: str = DEFAULT_URL, timeout_s: float = TIMEOUT_S, transport: httpx.BaseTransport | None = None
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.base_url,
            timeout=httpx.Timeout(timeout_s),
            headers={"User-Agent": USER_AGENT},
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ToxiproxyClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ transport

    def _request(self, method: str, path: str, json: Any = None, expect: tuple[int, ...] = (200,)) -> Any:
        try:
            response = self._http.request(method, path, json=json)
        except httpx.TimeoutException:
            raise NetworkShapingError(
                f"Toxiproxy at {self.base_url} did not answer {method} {path} within the timeout"
            ) from None
        except httpx.HTTPError as exc:
            raise NetworkShapingError(
                f"cannot reach Toxiproxy at {self.base_url} ({method} {path}: {exc}); start it "
                "(`harness toxiproxy serve` or a real toxiproxy-server) or pass the right --toxiproxy URL"
            ) from None
        if response.status_code not in expect:
            raise NetworkShapingError(
                f"Toxiproxy {method} {path} failed with {response.status_code}: {_server_message(response)}"
            )
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise NetworkShapingError(
                f"Toxiproxy {method} {path} answered {response.status_code} with a body that is not JSON: "
                f"{response.text[:200]!r}"
            ) from None

    # ------------------------------------------------------------ server

    def version(self) -> str:
        """The server's version string (`GET /version`, JSON from 2.6; older servers send plain text)."""
        try:
            response = self._http.get("/version")
        except httpx.HTTPError as exc:
            raise NetworkShapingError(f"cannot reach Toxiproxy at {self.base_url} (GET /version: {exc})") from None
        if response.status_code != 200:
            raise NetworkShapingError(
                f"Toxiproxy GET /version failed with {response.status_code}: {_server_message(response)}"
            )
        try:
            data = response.json()
        except ValueError:
            return response.text.strip()
        return str(data.get("version", "")) if isinstance(data, dict) else str(data)

    def reachable(self) -> bool:
        """Whether anything answers HTTP at the API address (`harness net clear --kernel` goes on without it)."""
        try:
            self._http.get("/version")
        except httpx.HTTPError:
            return False
        return True

    def reset(self) -> None:
        """Re-enable every proxy and remove every toxic (`POST /reset`)."""
        self._request("POST", "/reset", expect=(204,))

    # ------------------------------------------------------------ proxies

    def proxies(self) -> dict[str, Proxy]:
        data = self._request("GET", "/proxies")
        return {name: Proxy.from_json(p) for name, p in (data or {}).items()}

    def get_proxy(self, name: str) -> Proxy:
        return Proxy.from_json(self._request("GET", f"/proxies/{name}"))

    def create_proxy(self, name: str, upstream: str, listen: str = "127.0.0.1:0", enabled: bool = True) -> Proxy:
        """Create a proxy; `listen` port 0 comes back with the real port."""
        body = {"name": name, "upstream": upstream, "listen": listen, "enabled": enabled}
        return Proxy.from_json(self._request("POST", "/proxies", body, expect=(201,)))

    def update_proxy(
        self, name: str, *, listen: str | None = None, upstream: str | None = None, enabled: bool | None = None
    ) -> Proxy:
        """PATCH only the given fields."""
        body = {k: v for k, v in (("listen", listen), ("upstream", upstream), ("enabled", enabled)) if v is not None}
        return Proxy.from_json(self._request("PATCH", f"/proxies/{name}", body))

    def delete_proxy(self, name: str) -> None:
        self._request("DELETE", f"/proxies/{name}", expect=(204,))

    def populate(self, proxies: Iterable[Mapping[str, Any]]) -> list[Proxy]:
        """`POST /populate`: create or replace (when listen or upstream differ) each `{name,upstream,listen?}`."""
        data = self._request("POST", "/populate", list(proxies), expect=(201,))
        return [Proxy.from_json(p) for p in (data or {}).get("proxies", [])]

    def ensure_proxies(self, targets: Mapping[str, str], listen_host: str = "127.0.0.1") -> dict[str, Proxy]:
        """Make a proxy per `{name: "host:port" upstream}`: keep one that already points there, re-point one that
        does not (PATCH, keeping its listen address), create the rest on `listen_host` with an OS-chosen port."""
        existing = self.proxies()
        result: dict[str, Proxy] = {}
        for name, upstream in targets.items():
            current = existing.get(name)
            if current is None:
                result[name] = self.create_proxy(name, upstream, listen=f"{listen_host}:0")
            elif current.upstream != upstream or not current.enabled:
                result[name] = self.update_proxy(name, upstream=upstream, enabled=True)
            else:
                result[name] = current
        return result

    # ------------------------------------------------------------ toxics

    def toxics(self, proxy: str) -> list[dict[str, Any]]:
        return list(self._request("GET", f"/proxies/{proxy}/toxics") or [])

    def add_toxic(self, proxy: str, toxic: Mapping[str, Any]) -> dict[str, Any]:
        """Add one toxic envelope `{name,type,stream,toxicity,attributes}`; returns the server's copy."""
        return dict(self._request("POST", f"/proxies/{proxy}/toxics", dict(toxic)))

    def update_toxic(
        self, proxy: str, name: str, *, attributes: Mapping[str, Any] | None = None, toxicity: float | None = None
    ) -> dict[str, Any]:
        """PATCH a toxic's attributes and/or toxicity (the only fields Toxiproxy lets change)."""
        body: dict[str, Any] = {}
        if attributes is not None:
            body["attributes"] = dict(attributes)
        if toxicity is not None:
            body["toxicity"] = toxicity
        return dict(self._request("PATCH", f"/proxies/{proxy}/toxics/{name}", body))

    def remove_toxic(self, proxy: str, name: str) -> None:
        self._request("DELETE", f"/proxies/{proxy}/toxics/{name}", expect=(204,))

    def clear_toxics(self, proxy: str) -> None:
        for toxic in self.toxics(proxy):
            self.remove_toxic(proxy, str(toxic["name"]))

    @contextlib.contextmanager
    def applied(self, profile: NetworkProfile, proxies: Iterable[str]) -> Iterator[list[dict[str, Any]]]:
        """Apply the profile's rendered toxics to each proxy for the block; ALWAYS remove them afterwards, also
        when adding fails halfway. Yields the toxics applied (the same list on every proxy)."""
        toxics = toxiproxy_toxics(profile)
        added: list[tuple[str, str]] = []
        try:
            for proxy in proxies:
                for toxic in toxics:
                    self.add_toxic(proxy, toxic)
                    added.append((proxy, str(toxic["name"])))
            yield toxics
        finally:
            self._remove_all(added)

    def _remove_all(self, added: list[tuple[str, str]]) -> None:
        failures = []
        for proxy, name in reversed(added):
            try:
                self.remove_toxic(proxy, name)
            except NetworkShapingError as exc:
                if " 404:" not in str(exc):  # already gone (e.g. someone called /reset): nothing to undo
                    failures.append(str(exc))
        if failures:
            raise NetworkShapingError(
                f"could not remove {len(failures)} toxic(s); run `harness net clear`: {failures[0]}"
            )


def _server_message(response: httpx.Response) -> str:
    """Toxiproxy's `{"error","status"}` body (sent as text/plain), else the raw text."""
    try:
        data = response.json()
    except ValueError:
        return response.text.strip()[:200] or response.reason_phrase
    if isinstance(data, dict) and "error" in data:
        return str(data["error"])
    return response.text.strip()[:200]
