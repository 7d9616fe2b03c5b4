"""At the end of a run: the servers' per-hop counts of its messages, folded into result.json (docs/delivery.md).

    target URL ─► GET /_edge/status          an edge of ours? its origins (loopback ones only) are the regions
               ─► GET /_edge/admin/hops?run=<run id>                        edge: relayed
    each region ─► GET /_admin/hops?run=<run id>                            region: feed, fanout, written, drops
    (no edge: the target URL itself as a region)
        ─► ServerHops (piece → buckets) ─► add_server_hops(result): windows of the run, attribution

Asked with the service-role key (the reference stack's edge takes it as its admin token). A target without these
routes (a real Supabase deployment) has no server-side hops; the result says so and the attribution names no hop.
Called after the load stopped and before the reference stack is, so every count is in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from harness.model import hops as hop_model
from harness.model.hosts import is_loopback_url
from harness.model.result import Result
from harness.run.target import Target

TIMEOUT_S = 5.0
EDGE_STATUS = "/_edge/status"
EDGE_HOPS = "/_edge/admin/hops"
REGION_HOPS = "/_admin/hops"


@dataclass
class ServerHops:
    buckets: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """Piece (`edge`, `region <name>`) → its buckets `{"run", "t_s", "counts"}`."""
    notes: list[str] = field(default_factory=list)
    """Why a piece has no counts (not exposed, unreachable)."""


def _get(client: httpx.Client, url: str, run_id: str | None, token: str | None) -> tuple[Any, str | None]:
    """(JSON body, None) or (None, why not)."""
    headers = {"Authorization": f"Bearer {token}", "apikey": token} if token else {}
    params = {"run": run_id} if run_id else None
    try:
        response = client.get(url, params=params, headers=headers)
    except httpx.HTTPError as exc:
        return None, f"{type(exc).__name__}"
    if response.status_code != 200:
        return None, f"HTTP {response.status_code}"
    try:
        return response.json(), None
    except ValueError:
        return None, "not JSON"


def fetch_server_hops(target: Target, run_id: str) -> ServerHops:
    """Every piece's counts of `run_id`'s messages that the target exposes."""
    config = target.config
    key = config.service_role_key if config is not None else None
    token = key.reveal() if key is not None else None
    base = target.url.rstrip("/")
    out = ServerHops()
    with httpx.Client(timeout=TIMEOUT_S) as client:
        status, _ = _get(client, base + EDGE_STATUS, None, None)
        regions: list[str] = [base]
        if isinstance(status, dict) and isinstance(status.get("origins"), dict):
            body, why = _get(client, base + EDGE_HOPS, run_id, token)
            _keep(out, "edge", body, why)
            urls = [o.get("url") for o in status["origins"].values() if isinstance(o, dict)]
            regions = sorted({u.rstrip("/") for u in urls if isinstance(u, str) and is_loopback_url(u)})
        for url in regions:
            body, why = _get(client, url + REGION_HOPS, run_id, token)
            name = body.get("region") if isinstance(body, dict) else None
            _keep(out, f"{hop_model.REGION_PIECE_PREFIX}{name or urlsplit(url).netloc}", body, why)
    return out


def _keep(out: ServerHops, piece: str, body: Any, why: str | None) -> None:
    if isinstance(body, dict) and isinstance(body.get("buckets"), list):
        out.buckets[piece] = body["buckets"]
    else:
        out.notes.append(f"{piece}: no hop counts ({why or 'unexpected answer'})")


def add_server_hops(result: Result, server: ServerHops | None) -> Result:
    """The result with the servers' counts folded into its hop windows and the attribution worked out."""
    hops = result.hops
    if hops is None:
        if server is None or not any(server.buckets.values()):
            return result  # no message was sent
        hops = hop_model.DeliveryHops()
    windows = list(hops.windows)
    pieces: list[str] = []
    note = ""
    if server is not None:
        for piece, buckets in server.buckets.items():
            windows = hop_model.fold_server(windows, piece, buckets, result.window_s)
            pieces.append(piece)
        note = "; ".join(server.notes)
    if not pieces and not note:
        note = "the target exposes no per-hop counts"
    hops = hops.model_copy(update={"windows": windows, "server_pieces": sorted(pieces), "server_note": note})
    hops = hops.model_copy(update={"attribution": hop_model.attribute_all(hops)})
    return result.model_copy(update={"hops": hops})
