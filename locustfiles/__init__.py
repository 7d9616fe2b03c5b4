"""The Locust user classes (run one with `locust -f locustfiles/<name>.py`). Shipped in the wheel as
`harness.locustfiles`; `harness.loadgen.locustfiles.shipped_locustfile` finds them with importlib.resources (this
file makes the folder a package an editable install can map; Locust itself loads each file by path)."""
