"""Every Prometheus metric the run's /metrics exposes, spelled once (as Prometheus stores them: counters with
`_total`; summaries also have `<name>_sum` and `<name>_count`). docs/monitoring.md describes each, and
deploy/grafana/dashboards/harness.json and deploy/prometheus/alerts.yml use only these (tests check both).

Labels: `group` is the profile's user group, `type` the request type (`GET`, `REST`, `STORAGE`, `MEETING`, …),
`request` the request name (no ids in it), `kind` a failure kind, `region` an origin region, `quantile` 0.5, 0.95 or
0.99, `gate` a gate's name as in junit.xml, `state` and `verdict` the enum values below.
"""

from __future__ import annotations

from typing import Literal

RunState = Literal["starting", "running", "stopping", "finished"]
RUN_STATES: tuple[RunState, ...] = ("starting", "running", "stopping", "finished")
VERDICTS = ("passed", "failed", "invalid")
QUANTILES = (0.5, 0.95, 0.99)

RUN_INFO = "harness_run_info"
RUN_STATE = "harness_run_state"
USERS = "harness_users"
WORKERS = "harness_workers"
WORKERS_EXPECTED = "harness_workers_expected"
REQUESTS = "harness_requests_total"
ERRORS = "harness_request_errors_total"
REQUEST_RATE = "harness_requests_per_second"
REQUEST_LATENCY = "harness_request_latency_seconds"
GROUP_LATENCY = "harness_group_latency_seconds"
LATENCY = "harness_latency_seconds"
QUANTILE_ERROR = "harness_quantile_relative_error"
RESPONSE_BYTES = "harness_response_bytes_total"
REQUEST_BODY_BYTES = "harness_request_body_bytes_total"
ORIGIN_RESPONSES = "harness_origin_responses_total"
ORIGIN_SHARE = "harness_origin_share"
DELIVERY_LATENCY = "harness_delivery_latency_seconds"
DELIVERY_MESSAGES = "harness_delivery_messages_total"
DELIVERY_LOST = "harness_delivery_lost_total"
DELIVERY_DUPLICATES = "harness_delivery_duplicates_total"
DELIVERY_REORDERED = "harness_delivery_reordered_total"
MEETING_JOIN = "harness_meeting_join_seconds"
GATE_STATUS = "harness_gate_status"
GATE_OBSERVED = "harness_gate_observed"
GATE_THRESHOLD = "harness_gate_threshold"
VERDICT = "harness_verdict"

HELP: dict[str, str] = {
    RUN_INFO: (
        "Always 1; labels `run_id`, `profile`, `target` (a URL without credentials). Present once the target is known."
    ),
    RUN_STATE: "1 for the run's current `state` (starting, running, stopping, finished), 0 for the others.",
    USERS: "Locust users running now.",
    WORKERS: "Locust workers connected to the master now.",
    WORKERS_EXPECTED: "Workers the run waits for.",
    REQUESTS: (
        "Counter: requests, successful or failed (labels group, type, request). Message deliveries and delivery "
        "observations are not requests: they have their own metrics."
    ),
    ERRORS: "Counter: failed requests (labels group, type, request, kind).",
    REQUEST_RATE: "The master's current request rate over about 10 s (every request of `harness_requests_total`).",
    REQUEST_LATENCY: (
        "Summary per group, type and request: quantiles of the successful requests of the last 30 s (from the "
        "run's DDSketches), `_sum` and `_count` over the whole run."
    ),
    GROUP_LATENCY: "Summary per group: every request of the group merged (the group gates' p95 and p99).",
    LATENCY: "Summary over every request of the run merged (the run's p95 and p99 gates).",
    QUANTILE_ERROR: "Relative error bound of every quantile above (0.01: within 1 % of the true sample at that rank).",
    RESPONSE_BYTES: "Counter: response body bytes (labels group, type, request): downloads.",
    REQUEST_BODY_BYTES: "Counter: request body bytes the client sent (labels group, type, request): uploads.",
    ORIGIN_RESPONSES: (
        "Counter: responses by the region that served them (labels group, region; from the origin-region header)."
    ),
    ORIGIN_SHARE: (
        "Share (0 to 1) of the group's responses served by `region` over the whole run: the route-share gates' "
        "figure (the China group's share served by the Japan origin)."
    ),
    DELIVERY_LATENCY: (
        "Summary per group: end-to-end message delivery (send to receipt over Realtime), as "
        "`harness_request_latency_seconds`."
    ),
    DELIVERY_MESSAGES: (
        "Counter per group: messages expected at a receiver (delivered, lost or failed otherwise; duplicates left out)."
    ),
    DELIVERY_LOST: "Counter per group: messages not received within the delivery timeout.",
    DELIVERY_DUPLICATES: "Counter per group: second copies of a message already received.",
    DELIVERY_REORDERED: "Counter per group: receipts that came after a later message of the same sender.",
    MEETING_JOIN: "Summary per group: token fetch to the first `join` reply of the LiveKit signalling socket.",
    GATE_STATUS: (
        "1 passed, 0 failed or invalid (labels gate, kind: validity, smoke or gate), once the run is finished."
    ),
    GATE_OBSERVED: "The gate's observed figure (labels gate, unit), when it has one.",
    GATE_THRESHOLD: "The gate's threshold (labels gate, unit), when it has one.",
    VERDICT: "1 for the run's `verdict` (passed, failed, invalid: exit 0, 1, 2), 0 for the others, once finished.",
}
"""Each family's meaning and labels: the HELP line of /metrics, and what docs/monitoring.md lists."""

ALL = tuple(HELP)
"""Every family, in the order /metrics lists them."""
SUMMARIES = (REQUEST_LATENCY, GROUP_LATENCY, LATENCY, DELIVERY_LATENCY, MEETING_JOIN)
"""Families that also expose `<name>_sum` and `<name>_count`."""
