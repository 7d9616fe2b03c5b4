"""The edge's count of load-test frames it relayed to viewers, and its time stamp on them (docs/delivery.md).

    origin ws ──► _pump: text frame with a `_hops` stamp? ──► add ,"e":<now ms> ──► viewer ──► count `relayed`
    GET  /_edge/admin/hops?run=<run id>             {"piece": "edge", "buckets": [{"run", "t_s", "counts"}], …}
    POST /_edge/admin/hops {"fault": "relayed:<n>" | "off"}   test hook: drop every n-th stamped frame

Protected like the other admin routes (admin.py): 404 without an admin token, 401 without the right bearer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web

from harness.errors import ConfigError
from harness.model import hop_counts as hc
from harness.model import strict_json

from .admin import NO_STORE, json_error, refusal_of

PATH = "/_edge/admin/hops"


@dataclass
class EdgeHops:
    counters: hc.HopCounters = field(default_factory=hc.HopCounters)
    fault: hc.Fault | None = None


HOPS = web.AppKey("edge_hops", EdgeHops)


async def get_hops(request: web.Request) -> web.Response:
    refusal = refusal_of(request)
    if refusal is not None:
        return refusal
    hops = request.app[HOPS]
    body = {
        "piece": "edge",
        "buckets": hops.counters.snapshot(request.query.get("run") or None),
        "evicted_buckets": hops.counters.evicted,
        "fault": hops.fault.as_dict() if hops.fault is not None else None,
    }
    return web.json_response(body, headers=NO_STORE)


async def set_fault(request: web.Request) -> web.Response:
    refusal = refusal_of(request)
    if refusal is not None:
        return refusal
    expected = 'expected {"fault": "relayed:<n>" | "off"}'
    try:
        body = strict_json.loads(await request.read())
    except strict_json.JsonBodyError as exc:
        return json_error(400, f"the body is not JSON ({exc.message}); {expected}")
    if not isinstance(body, dict) or not isinstance(body.get("fault"), str):
        return json_error(400, expected)
    try:
        fault = hc.Fault.parse(body["fault"], "fault")
    except ConfigError as exc:
        return json_error(400, str(exc))
    if fault is not None and fault.hop != hc.RELAYED:
        return json_error(400, f"the edge drops at {hc.RELAYED} only; {fault.hop} is another piece's hop")
    request.app[HOPS].fault = fault
    return web.json_response({"fault": fault.as_dict() if fault is not None else None}, headers=NO_STORE)


def add_routes(app: web.Application) -> None:
    fault = hc.Fault.from_env()
    app[HOPS] = EdgeHops(fault=fault if fault is not None and fault.hop == hc.RELAYED else None)
    app.router.add_get(PATH, get_hops)
    app.router.add_post(PATH, set_fault)
