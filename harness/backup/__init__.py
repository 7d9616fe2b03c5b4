"""Encrypted backups: pg_dump -> GPG -> S3, verified by restoring them (docs/backups.md).

source.py     which database: --dsn, or a region server's /_admin/postgres
inventory.py  row counts and sample digests per table (at backup time, and of a restored copy)
pgtools.py    pg_dump, pg_dumpall --roles-only, psql, pg_restore
manifest.py   what a backup holds (inside the bundle, and in plain JSON beside it)
bundle.py     tar of manifest.json, roles.sql, database.pgdump
crypto.py     GPG keyring: recipients, encrypt, decrypt
store.py      S3: key layout, upload (multipart), replica copy, listing, download, delete
fetch.py      download ─► checksum ─► decrypt ─► unpack (verify and restore)
load.py       roles ─► pg_restore ─► inventory, into any server
checks.py     the checks and their text report
create.py / verify.py / restore.py / prune.py   the four commands; cli.py parses and prints
"""
