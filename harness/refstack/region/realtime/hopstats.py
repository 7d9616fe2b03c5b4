"""The region's per-hop counts of load-test messages, for the orchestrator (docs/delivery.md):

    GET  /_admin/hops?run=<run id>     {"piece": "region", "region": R, "buckets": [{"run", "t_s", "counts"}], …}
    POST /_admin/hops {"fault": "<hop>:<n>" | "off"}   test hook: drop every n-th load-test message at a region hop

Both need the service-role key, like every /_admin route. The counts live in the hub (`Hub.hops`): the change feed
counts `feed`, the fan-out `fanout`, each socket's writer `written` and what it lost, by reason.
"""

from __future__ import annotations

from aiohttp import web

from harness.errors import ConfigError
from harness.model import hop_counts as hc
from harness.model import strict_json
from harness.refstack.region.realtime.endpoint import HUB
from harness.refstack.region.state import CONFIG, require_service

PATH = "/_admin/hops"
NO_STORE = {"Cache-Control": "no-store"}
REGION_FAULTS = (hc.FEED, hc.FANOUT, hc.WRITTEN)


async def get_hops(request: web.Request) -> web.Response:
    require_service(request)
    hub = request.app[HUB]
    run = request.query.get("run") or None
    body = {
        "piece": "region",
        "region": request.app[CONFIG].region,
        "buckets": hub.hops.snapshot(run),
        "evicted_buckets": hub.hops.evicted,
        "dropped_slow_sockets": hub.dropped_slow_sockets,
        "fault": hub.fault.as_dict() if hub.fault is not None else None,
    }
    return web.json_response(body, headers=NO_STORE)


async def set_fault(request: web.Request) -> web.Response:
    require_service(request)
    expected = 'expected {"fault": "<hop>:<n>"} or {"fault": "off"}'
    try:
        body = strict_json.loads(await request.read())
    except strict_json.JsonBodyError as exc:
        return web.json_response({"message": f"the body is not JSON ({exc.message}); {expected}"}, status=400,
                                 headers=NO_STORE)  # fmt: skip
    if not isinstance(body, dict) or not isinstance(body.get("fault"), str):
        return web.json_response({"message": expected}, status=400, headers=NO_STORE)
    try:
        fault = hc.Fault.parse(body["fault"], "fault")
    except ConfigError as exc:
        return web.json_response({"message": str(exc)}, status=400, headers=NO_STORE)
    if fault is not None and fault.hop not in REGION_FAULTS:
        return web.json_response(
            {"message": f"a region drops at {', '.join(REGION_FAULTS)} only; {fault.hop} is another piece's hop"},
            status=400,
            headers=NO_STORE,
        )
    request.app[HUB].fault = fault
    return web.json_response({"fault": fault.as_dict() if fault is not None else None}, headers=NO_STORE)


def add_routes(app: web.Application) -> None:
    app.router.add_get(PATH, get_hops)
    app.router.add_post(PATH, set_fault)
