"""Every metric name the load generator records and the gates and reports read, spelled once.

A request event is (request type, name): Locust's `events.request` for HTTP and websocket calls, and these
harness-made ones. Gates and reports find them by these names in `result.json`, so a rename here is a result
schema change (docs/result-schema.md).
"""

from __future__ import annotations

DELIVERY_TYPE = "DELIVERY"
"""Request type of end-to-end message delivery events, recorded by the receiving user."""
DELIVERY_NAME = "message.delivery"
"""Request name of end-to-end message delivery samples (send to receipt over Realtime); losses and duplicates
are its failures."""
DELIVERY_LEGS = ("commit", "feed", "fanout", "edge", "client")
"""The legs a delivery's latency splits into (docs/delivery.md): send → commit, commit → change feed decoded it,
feed → fan-out queued the frame, fan-out → edge relayed it (the region's outbox and socket, the edge's read), edge →
client reader. A leg whose end stamp is missing (no edge, a real deployment) is folded into the next one."""
DELIVERY_LEG_NAMES = {leg: f"{DELIVERY_NAME}.{leg}" for leg in DELIVERY_LEGS}
"""`message.delivery.<leg>`: the per-leg sketches in result.json's `hops.legs` (not request events)."""
REORDERED_NAME = "message.reordered"
"""A receipt that came after a later message of the same sender: a delivery observation, not a request."""
OBSERVATION_NAMES = (REORDERED_NAME,)
"""Never counted in the overall rps, error rate, percentiles or request count, whatever `totals_exclude` says."""
TOTALS_EXCLUDED = (DELIVERY_NAME, REORDERED_NAME)
"""Names a profile leaves out of its request totals by default (a delivery is not a request)."""

MEETING_TYPE = "MEETING"
"""Request type of meeting events."""
MEETING_JOIN_NAME = "meeting.join"
"""Token fetch to the first `join` response on the LiveKit signalling socket."""
MEETING_RTT_NAME = "meeting.rtt"
"""Signalling ping to pong."""

LOST_KIND = "lost"
"""Failure kind of a delivery not received within the timeout (response time = age at expiry)."""
DUPLICATE_KIND = "duplicate"
"""Failure kind of a second copy of a message already received."""

REGION_HEADER = "x-origin-region"
"""Response header naming the region that served a request: the route-share gates count its values."""

ITERATIONS = "iterations"
"""Open model: the gates `iterations[<user class>].dropped` (profile `max_dropped_iterations_pct`) and
`iterations[<user class>].rate` (profile `min_rate_achieved_pct`), over the result's `Window.arrivals` counts."""
DROPPED_SUFFIX = "dropped"
RATE_SUFFIX = "rate"

ACKED_OBJECT_MISSING_KIND = "acked_object_missing"
"""Failure kind of a download (or signed fetch) answered 404 for an object whose upload was acknowledged: data loss,
or a read served by a region the write has not reached yet (the stat's origins say which region answered)."""
ACKED_UPLOAD = "acked_upload"
"""Event context key: the request reads an object whose upload was acknowledged (the scenario only downloads those)."""
