"""Pure data, no network and no processes: profiles, results and their sketches, metric names, credentials, the
worker-to-user assignment, delivery bookkeeping, the target configuration and the demo keys (docs/architecture.md)."""
