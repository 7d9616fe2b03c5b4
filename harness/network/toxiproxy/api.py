"""The Toxiproxy 2.x HTTP API (Toxiproxy's `api.go`): routes, the middleware every route goes through, and
`build_app`. Handlers raise `ApiError`; the middleware renders it with the one helper in `errors.py`."""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import Awaitable, Callable

from aiohttp import web

from harness.network.toxiproxy.errors import (
    ERR_BAD_REQUEST_BODY,
    ERR_MISSING_FIELD,
    ApiError,
    error_response,
    plain_text_response,
)
from harness.network.toxiproxy.proxy import Proxy, check_listen
from harness.network.toxiproxy.proxy_collection import ProxyCollection
from harness.network.toxiproxy.wire import decode_json, encode_json, field, json_type

VERSION = "2.12.0"
"""The Toxiproxy release whose API this server reproduces (PATCH routes and JSON /version, without metrics)."""

HANDLER_TIMEOUT_S = 25.0
"""Toxiproxy wraps every route in this timeout; past it the client gets a 503 while the change completes."""

REQUEST_ID_HEADER = "X-Toxiproxy-Request-Id"

COLLECTION: web.AppKey[ProxyCollection] = web.AppKey("toxiproxy_collection", ProxyCollection)

_TIMEOUT_BODY = "<html><head><title>Timeout</title></head><body><h1>Timeout</h1></body></html>"  # Go's default
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def build_app(host_for_listeners: str = "127.0.0.1") -> web.Application:
    """The API as an aiohttp application. Proxies listen on the application's event loop and are closed in its
    cleanup. `host_for_listeners` is used when a proxy's `listen` is empty or has no host (Toxiproxy would then
    listen on every interface)."""
    app = web.Application(middlewares=[_toxiproxy_middleware])
    app[COLLECTION] = ProxyCollection(host_for_listeners)
    app.on_cleanup.append(_close_proxies)
    router = app.router
    router.add_post("/reset", reset_state)
    router.add_get("/proxies", proxy_index, allow_head=False)
    router.add_post("/proxies", proxy_create)
    router.add_post("/populate", populate)
    router.add_get("/proxies/{proxy}", proxy_show, allow_head=False)
    router.add_post("/proxies/{proxy}", proxy_update)  # deprecated since 2.6.0, still what toxiproxy-python sends
    router.add_patch("/proxies/{proxy}", proxy_update)
    router.add_delete("/proxies/{proxy}", proxy_delete)
    router.add_get("/proxies/{proxy}/toxics", toxic_index, allow_head=False)
    router.add_post("/proxies/{proxy}/toxics", toxic_create)
    router.add_get("/proxies/{proxy}/toxics/{toxic}", toxic_show, allow_head=False)
    router.add_post("/proxies/{proxy}/toxics/{toxic}", toxic_update)
    router.add_patch("/proxies/{proxy}/toxics/{toxic}", toxic_update)
    router.add_delete("/proxies/{proxy}/toxics/{toxic}", toxic_delete)
    router.add_get("/version", version, allow_head=False)
    return app


async def _close_proxies(app: web.Application) -> None:
    await app[COLLECTION].close_all()


# -- middleware ------------------------------------------------------------------------------------------------
@web.middleware
async def _toxiproxy_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    response: web.StreamResponse
    if request.headers.get("User-Agent", "").startswith("Mozilla/"):
        response = plain_text_response("User agent not allowed", 403)  # keeps browsers (and CSRF) off the API
    else:
        try:
            response = await _with_timeout(handler(request))
        except ApiError as err:
            response = error_response(err)
        except web.HTTPNotFound:
            response = plain_text_response("404 page not found", 404)  # gorilla/mux's answer
        except web.HTTPMethodNotAllowed:
            response = web.Response(status=405)
        except web.HTTPClientError as exc:  # e.g. 413 from reading a body over the size limit
            response = error_response(ApiError(f"bad request body: {exc.text or exc.reason}", exc.status))
        except TimeoutError:
            response = web.Response(text=_TIMEOUT_BODY, status=503, content_type="text/html")
    response.headers[REQUEST_ID_HEADER] = _request_id()
    return response


async def _with_timeout(call: Awaitable[web.StreamResponse]) -> web.StreamResponse:
    # Shielded: a change to proxies or toxics that outlives the timeout still completes, as in Go.
    task = asyncio.ensure_future(call)
    return await asyncio.wait_for(asyncio.shield(task), HANDLER_TIMEOUT_S)


def _request_id() -> str:
    """20 characters of base32hex, the shape of the xid Toxiproxy puts in X-Toxiproxy-Request-Id."""
    return base64.b32hexencode(os.urandom(12)).decode().rstrip("=").lower()


# -- helpers ---------------------------------------------------------------------------------------------------
def _json(value: object, status: int = 200) -> web.Response:
    return web.Response(body=encode_json(value).encode(), status=status, headers={"Content-Type": "application/json"})


async def _body(request: web.Request) -> object:
    try:
        return decode_json(await request.read())
    except ValueError as exc:
        raise ERR_BAD_REQUEST_BODY.joined(exc) from None


async def _object_body(request: web.Request) -> dict[str, object]:
    body = await _body(request)
    if body is None:  # Go decodes `null` into the defaults
        return {}
    if not isinstance(body, dict):
        raise ERR_BAD_REQUEST_BODY.joined(f"expected a JSON object, got {json_type(body)}")
    return body


def _fields(body: dict[str, object], defaults: dict[str, object]) -> dict[str, object]:
    """The proxy fields named in `defaults`, checked (a malformed `listen` is a 400, not a failed listen)."""
    kinds = {"name": str, "listen": str, "upstream": str, "enabled": bool}
    try:
        values = {key: field(body, key, kinds[key], default) for key, default in defaults.items()}
        if "listen" in body:
            check_listen(str(values["listen"]))
    except ValueError as exc:
        raise ERR_BAD_REQUEST_BODY.joined(exc) from None
    return values


def _collection(request: web.Request) -> ProxyCollection:
    return request.app[COLLECTION]


# -- handlers --------------------------------------------------------------------------------------------------
async def proxy_index(request: web.Request) -> web.Response:
    return _json({name: proxy.to_json() for name, proxy in _collection(request).proxies.items()})


async def reset_state(request: web.Request) -> web.Response:
    await _collection(request).reset()
    return web.Response(status=204)


async def proxy_create(request: web.Request) -> web.Response:
    values = _fields(await _object_body(request), {"name": "", "listen": "", "upstream": "", "enabled": True})
    if not values["name"]:
        raise ERR_MISSING_FIELD.joined("name")
    if not values["upstream"]:
        raise ERR_MISSING_FIELD.joined("upstream")
    collection = _collection(request)
    proxy = collection.new_proxy(str(values["name"]), str(values["listen"]), str(values["upstream"]))
    await collection.add(proxy, bool(values["enabled"]))
    return _json(proxy.to_json(), status=201)


async def populate(request: web.Request) -> web.Response:
    proxies: list[Proxy] = []
    error: ApiError | None
    try:
        body = await _body(request)
    except ApiError as err:
        error = err
    else:
        proxies, error = await _collection(request).populate(body)
    # Go marshals an empty result slice as null, so an empty populate answers {"proxies":null}.
    result: dict[str, object] = error.body() if error is not None else {}
    result["proxies"] = [proxy.to_json() for proxy in proxies] or None
    return _json(result, status=error.status if error is not None else 201)


async def proxy_show(request: web.Request) -> web.Response:
    return _json(_collection(request).get(request.match_info["proxy"]).to_json())


async def proxy_update(request: web.Request) -> web.Response:
    proxy = _collection(request).get(request.match_info["proxy"])
    current = {"listen": proxy.listen, "upstream": proxy.upstream, "enabled": proxy.enabled}
    values = _fields(await _object_body(request), current)
    await proxy.update(str(values["listen"]), str(values["upstream"]), bool(values["enabled"]))
    return _json(proxy.to_json())


async def proxy_delete(request: web.Request) -> web.Response:
    await _collection(request).remove(request.match_info["proxy"])
    return web.Response(status=204)


async def toxic_index(request: web.Request) -> web.Response:
    proxy = _collection(request).get(request.match_info["proxy"])
    return _json([w.to_json() for w in proxy.toxics.toxics()])


async def toxic_create(request: web.Request) -> web.Response:
    proxy = _collection(request).get(request.match_info["proxy"])
    wrapper = await proxy.toxics.add(await _body(request))
    return _json(wrapper.to_json())  # 200, not 201, as Toxiproxy answers


async def toxic_show(request: web.Request) -> web.Response:
    proxy = _collection(request).get(request.match_info["proxy"])
    return _json(proxy.toxics.get(request.match_info["toxic"]).to_json())


async def toxic_update(request: web.Request) -> web.Response:
    proxy = _collection(request).get(request.match_info["proxy"])
    wrapper = await proxy.toxics.update(request.match_info["toxic"], await request.read())
    return _json(wrapper.to_json())


async def toxic_delete(request: web.Request) -> web.Response:
    proxy = _collection(request).get(request.match_info["proxy"])
    await proxy.toxics.remove(request.match_info["toxic"])
    return web.Response(status=204)


async def version(request: web.Request) -> web.Response:
    body = f'{{"version": "{VERSION}"}}\n'
    return web.Response(body=body.encode(), headers={"Content-Type": "application/json;charset=utf-8"})
