"""Failover and disaster recovery: monitor, failover, failback, status (docs/failover.md)."""
