"""Encrypted backups: pg_dump -> GPG -> S3, verified by restoring them (docs/backups.md)."""
