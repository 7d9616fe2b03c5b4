"""The run orchestrator, one module per step (orchestrator.py sequences them), and the commands that drive it:
`harness smoke|load|china|soak|spike|run`, `harness users`, `harness target` (docs/architecture.md)."""
