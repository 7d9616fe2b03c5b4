"""`harness backup create | verify | restore | prune`: parse, build the pieces, delegate, print.

Exit codes: 0 done (verify: the backup restored and matched), 1 a verify or restore that failed its checks,
2 bad input or an unreachable database/S3 (harness.cli turns HarnessError into 2). Progress goes to stderr, the
result to stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from harness.backup import inventory
from harness.backup.checks import render_checks, render_tables
from harness.backup.create import create_backup
from harness.backup.crypto import PASSPHRASE_VARIABLE, RECIPIENTS_VARIABLE, Keyring, passphrase_from_env
from harness.backup.crypto import recipients_from as gpg_recipients
from harness.backup.prune import DEFAULT_RETENTION_DAYS, prune_backups
from harness.backup.restore import restore_backup
from harness.backup.source import DSN_VARIABLE, SERVICE_KEY_VARIABLE, resolve
from harness.backup.store import DEFAULT_PREFIX, MIB, BackupStore, check_label
from harness.backup.verify import VerifyResult, verify_backup
from harness.dr import aws
from harness.dr.alerts import Alert, AlertSinks, publish
from harness.errors import ConfigError
from harness.model.argtypes import non_negative_int, positive_float, positive_int

BUCKET_VARIABLE = "HARNESS_BACKUP_BUCKET"
REPLICA_BUCKET_VARIABLE = "HARNESS_BACKUP_REPLICA_BUCKET"
REPLICA_REGION_VARIABLE = "HARNESS_BACKUP_REPLICA_REGION"
DEFAULT_REPLICA_REGION = "ap-northeast-1"

_DESCRIPTION = f"""\
Backups of a region's PostgreSQL: pg_dump (custom format) plus its roles, encrypted with GPG to the recipients you
name, uploaded to S3 with the SHA-256 of the encrypted bytes in the object metadata (x-amz-meta-sha256), and copied
to a second bucket in another region. Keys: PREFIX/LABEL/<UTC stamp>.dump.gpg and .manifest.json beside it (table
names, row counts, sizes; no row data).

  create   dump, encrypt, upload, copy to the replica bucket
  verify   download, check the checksum, decrypt, restore into a scratch PostgreSQL, compare each table's rows
           and a sample of rows with those recorded at backup time (and with --source-dsn, the live source);
           exit 1 if any of it fails
  restore  the same download and checks, then into --target-dsn after confirmation
  prune    delete backups older than --retention-days (default {DEFAULT_RETENTION_DAYS}), keeping each label's newest

Environment: {DSN_VARIABLE}, {RECIPIENTS_VARIABLE} (comma-separated), {PASSPHRASE_VARIABLE} (a protected secret
key's passphrase; never printed), GNUPGHOME, {BUCKET_VARIABLE}, {REPLICA_BUCKET_VARIABLE}, {REPLICA_REGION_VARIABLE},
{SERVICE_KEY_VARIABLE} (with --region-url), AWS_* (see the AWS options). docs/backups.md has the whole story.
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    backup = subparsers.add_parser(
        "backup", help="encrypted PostgreSQL backups in S3: create, verify (restore and compare), restore, prune",
        description=_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    sub = backup.add_subparsers(title="backup commands", metavar="COMMAND", required=True)

    create = sub.add_parser(
        "create", help="dump a database, encrypt it, upload it with its checksum, copy it to the replica bucket",
        description="pg_dump (custom format) and the roles of one database, in one snapshot with its table "
        "inventory (row counts, sample digests), encrypted with GPG and uploaded to S3.",
    )  # fmt: skip
    _source_args(create, "--dsn", "--region-url", f"the database to back up (default: {DSN_VARIABLE})")
    create.add_argument(
        "--label", type=check_label, metavar="NAME",
        help="the backup's name in the key, e.g. the region (default: the database name)",
    )  # fmt: skip
    create.add_argument(
        "--recipient", action="append", metavar="KEY",
        help=f"GPG key to encrypt to: email or fingerprint in the keyring; repeatable (default: {RECIPIENTS_VARIABLE})",
    )  # fmt: skip
    create.add_argument(
        "--schema", action="append", metavar="NAME",
        help="schema whose tables are counted and sampled; repeatable (default: public, auth, storage). The dump "
        "always holds the whole database",
    )  # fmt: skip
    create.add_argument(
        "--sample-rows", type=non_negative_int, default=inventory.DEFAULT_SAMPLE_ROWS, metavar="N",
        help="rows per table in the sample digest, the first N by primary key (default: %(default)s)",
    )  # fmt: skip
    create.add_argument(
        "--multipart-threshold-mb", type=positive_float, default=64.0, metavar="MB",
        help="upload in parts above this size (default: %(default)s)",
    )  # fmt: skip
    _common_args(create, changes=True)
    create.set_defaults(func=_create)

    verify = sub.add_parser(
        "verify", help="download a backup, check it, restore it into a scratch PostgreSQL and compare (exit 1 if not)",
        description="Checks the SHA-256 against the object metadata, decrypts, restores into a temporary PostgreSQL "
        "(removed after), and compares each table's row count and sample digest with the manifest inside the "
        "backup. Exit 0 only when everything matched; 1 when the backup is corrupted, cannot be decrypted or "
        "restored, or differs.",
    )  # fmt: skip
    _which_args(verify)
    _source_args(
        verify, "--source-dsn", "--source-region-url",
        "also compare the restored sample rows with this live database, by primary key (rows changed since the "
        "backup show as differences)",
    )  # fmt: skip
    verify.add_argument("--jobs", type=positive_int, default=2, metavar="N", help="pg_restore workers (default: 2)")
    verify.add_argument("--json", type=Path, metavar="FILE", help="also write the result as JSON to FILE")
    _common_args(verify, changes=False)
    AlertSinks.add_arguments(verify)
    verify.set_defaults(func=_verify)

    restore = sub.add_parser(
        "restore", help="restore a backup into a chosen database after confirmation",
        description="The same checks as verify, then pg_restore --clean --if-exists in one transaction into the "
        "target: the backup's objects replace the target's objects of the same name; others are left alone. "
        "Asks for confirmation (or --yes); refuses without a terminal.",
    )  # fmt: skip
    _which_args(restore)
    _source_args(restore, "--target-dsn", "--target-region-url", "the database to restore into")
    restore.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    _common_args(restore, changes=False)
    restore.set_defaults(func=_restore)

    prune = sub.add_parser(
        "prune", help=f"delete backups older than the retention (default {DEFAULT_RETENTION_DAYS} days)",
        description="Ages each backup by the UTC timestamp in its key and deletes those older than --retention-days "
        "in the bucket and the replica bucket. The newest backup of each label is always kept.",
    )  # fmt: skip
    prune.add_argument(
        "--retention-days", type=positive_float, default=DEFAULT_RETENTION_DAYS, metavar="DAYS",
        help="keep backups younger than this (default: %(default)s)",
    )  # fmt: skip
    prune.add_argument("--dry-run", action="store_true", help="print what would be deleted, delete nothing")
    _store_args(prune)
    prune.add_argument("--confirm-remote", action="store_true", help="allow deleting on real AWS (see AWS options)")
    aws.add_arguments(prune)
    prune.set_defaults(func=_prune)


# -- arguments --------------------------------------------------------------------------------------------------------
def _source_args(parser: argparse.ArgumentParser, dsn_flag: str, region_flag: str, what: str) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument(dsn_flag, metavar="DSN", help=f"postgresql://USER[:PASSWORD]@HOST:PORT/DB: {what}")
    group.add_argument(
        region_flag, metavar="URL",
        help=f"a region server that says where its PostgreSQL listens (GET URL/_admin/postgres with "
        f"{SERVICE_KEY_VARIABLE})",
    )  # fmt: skip


def _which_args(parser: argparse.ArgumentParser) -> None:
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--key", metavar="KEY", help="the backup's S3 key (PREFIX/LABEL/STAMP.dump.gpg)")
    which.add_argument("--label", type=check_label, metavar="NAME", help="the latest backup of this label")
    parser.add_argument(
        "--from-replica", action="store_true", help="read the replica bucket's copy (and check the primary's)"
    )


def _store_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("buckets")
    group.add_argument(
        "--bucket", default=os.environ.get(BUCKET_VARIABLE), metavar="NAME",
        help=f"the backups' bucket (default: {BUCKET_VARIABLE})",
    )  # fmt: skip
    group.add_argument(
        "--prefix", default=DEFAULT_PREFIX, metavar="PREFIX", help="key prefix in both buckets (default: %(default)s)"
    )
    group.add_argument(
        "--replica-bucket", default=os.environ.get(REPLICA_BUCKET_VARIABLE), metavar="NAME",
        help=f"the copy in another region (default: {REPLICA_BUCKET_VARIABLE}; unset: no copy)",
    )  # fmt: skip
    group.add_argument(
        "--replica-region", default=os.environ.get(REPLICA_REGION_VARIABLE) or DEFAULT_REPLICA_REGION,
        metavar="REGION", help=f"the replica bucket's region (default: {REPLICA_REGION_VARIABLE}, else %(default)s)",
    )  # fmt: skip


def _common_args(parser: argparse.ArgumentParser, *, changes: bool) -> None:
    parser.add_argument(
        "--gnupg-home", type=Path, metavar="DIR", help="GnuPG home with the backup keys (default: GNUPGHOME, ~/.gnupg)"
    )
    parser.add_argument(
        "--work-dir", type=Path, metavar="DIR",
        help="where the plaintext dump and the scratch PostgreSQL go, in a private folder removed after; needs "
        "about twice the dump's size (default: the system's temporary folder)",
    )  # fmt: skip
    _store_args(parser)
    if changes:
        parser.add_argument("--confirm-remote", action="store_true", help="allow uploading to real AWS")
    aws.add_arguments(parser)


# -- pieces -----------------------------------------------------------------------------------------------------------
def _say(line: str) -> None:
    print(f"  {line}", file=sys.stderr, flush=True)


def _stores(args: argparse.Namespace, settings: aws.AwsSettings) -> tuple[BackupStore, BackupStore | None]:
    primary = BackupStore(settings, args.bucket, args.prefix)
    replica = None
    if args.replica_bucket:
        replica = BackupStore(settings, args.replica_bucket, args.prefix, region=args.replica_region)
    return primary, replica


def _pick(args: argparse.Namespace, store: BackupStore) -> str:
    if args.key:
        if store.ref_of(args.key) is None or not args.key.endswith(".dump.gpg"):
            raise ConfigError(
                f"--key {args.key!r} is not a backup key under {args.prefix!r}: give PREFIX/LABEL/STAMP.dump.gpg as "
                "`harness backup create` printed it, or --label NAME for the latest"
            )
        return str(args.key)
    latest = store.latest(args.label)
    return store.dump_key(latest.label, latest.stamp)


# -- commands ---------------------------------------------------------------------------------------------------------
def _create(args: argparse.Namespace) -> int:
    settings = aws.from_args(args)
    aws.check_changes_allowed(settings, confirm_remote=args.confirm_remote, what="upload a backup")
    source = resolve(args.dsn, args.region_url, what="database to back up")
    label = args.label or check_label(source.database)
    recipients = gpg_recipients(args.recipient)
    keyring = Keyring(args.gnupg_home)
    store, replica = _stores(args, settings)
    schemas = tuple(args.schema or inventory.DEFAULT_SCHEMAS)
    print(f"backing up {source.display()} as {label} to {store.url(store.prefix)}", file=sys.stderr)
    result = create_backup(
        source, store, keyring, recipients, label=label, replica=replica, schemas=schemas,
        sample_rows=args.sample_rows, multipart_threshold_mb=args.multipart_threshold_mb, work_dir=args.work_dir,
        say=_say,
    )  # fmt: skip
    m = result.manifest
    print(f"backup {store.url(result.key)}")
    for url in result.urls[1:]:
        print(f"  copy      {url}")
    print(f"  source    {m.source} (PostgreSQL {m.server_version}, pg_dump {m.pg_dump_version}) at {m.created_at}")
    print(f"  size      dump {m.dump_bytes / MIB:.2f} MiB, encrypted {(m.encrypted_bytes or 0) / MIB:.2f} MiB")
    print(f"  sha256    {m.sha256}")
    print(f"  tables    {len(m.tables)} in {', '.join(m.schemas)}, {m.total_rows} rows")
    print(f"  times     dump {result.dump_s:.1f} s, encrypt {result.encrypt_s:.1f} s, upload {result.upload_s:.1f} s")
    return 0


def _read_stores(args: argparse.Namespace, settings: aws.AwsSettings) -> tuple[BackupStore, BackupStore | None]:
    """(the bucket to read the backup from, the other one); `--from-replica` reads the second region's copy."""
    store, replica = _stores(args, settings)
    if not args.from_replica:
        return store, replica
    if replica is None:
        raise ConfigError("--from-replica needs --replica-bucket (or HARNESS_BACKUP_REPLICA_BUCKET)")
    return replica, store


def _verify(args: argparse.Namespace) -> int:
    settings = aws.from_args(args)
    store, replica = _read_stores(args, settings)
    source = None
    if args.source_dsn or args.source_region_url:
        source = resolve(args.source_dsn, args.source_region_url, what="source", dsn_flag="--source-dsn",
                         region_flag="--source-region-url")  # fmt: skip
    key = _pick(args, store)
    keyring = Keyring(args.gnupg_home)
    print(f"verifying {store.url(key)}", file=sys.stderr)
    result = verify_backup(
        store, key, keyring, passphrase_from_env(), source=source, replica=replica, work_dir=args.work_dir,
        jobs=args.jobs, say=_say,
    )  # fmt: skip
    _print_verify(result)
    if args.json:
        args.json.write_text(json.dumps(result.to_dict(), indent=2) + "\n")
    if not result.ok:  # a backup that cannot be trusted is announced (SNS and/or Slack, when configured)
        sinks = AlertSinks.from_args(args, settings)
        if sinks.enabled:
            publish(Alert("backup verify", store.url(key), result.summary(), str(args.json or ""), ok=False), sinks)
    return 0 if result.ok else 1


def _print_verify(result: VerifyResult) -> None:
    print(f"backup {result.url}")
    for line in render_checks(result.checks) + render_tables(result.tables, result.source_samples):
        print(line)
    print(f"verify: {'ok' if result.ok else 'FAILED'} ({result.seconds:.1f} s)")


def _confirm(args: argparse.Namespace, url: str, target: str) -> None:
    if args.yes:
        return
    question = (
        f"restore {url} into {target}? Its tables of the same names are replaced by the backup's. Type 'yes' to go on: "
    )
    if not sys.stdin.isatty():
        raise ConfigError(f"restore into {target} needs confirmation: add --yes (no terminal to ask on)")
    if input(question).strip().lower() != "yes":
        raise ConfigError("restore not confirmed; nothing was changed")


def _restore(args: argparse.Namespace) -> int:
    store, _other = _read_stores(args, aws.from_args(args))
    target = resolve(args.target_dsn, args.target_region_url, what="restore target", dsn_flag="--target-dsn",
                     region_flag="--target-region-url")  # fmt: skip
    key = _pick(args, store)
    keyring = Keyring(args.gnupg_home)
    _confirm(args, store.url(key), target.display())
    print(f"restoring {store.url(key)} into {target.display()}", file=sys.stderr)
    result = restore_backup(store, key, keyring, passphrase_from_env(), target, work_dir=args.work_dir, say=_say)
    print(f"backup {result.url} -> {result.target}")
    for line in render_checks(result.checks) + render_tables(result.tables):
        print(line)
    print(f"restore: {'ok' if result.ok else 'FAILED'} ({result.seconds:.1f} s)")
    return 0 if result.ok else 1


def _prune(args: argparse.Namespace) -> int:
    settings = aws.from_args(args)
    if not args.dry_run:
        aws.check_changes_allowed(settings, confirm_remote=args.confirm_remote, what="delete backups")
    store, replica = _stores(args, settings)
    stores = [store] + ([replica] if replica is not None else [])
    result = prune_backups(stores, args.retention_days, dry_run=args.dry_run, say=_say)
    delete_word = "would delete" if args.dry_run else "deleted"
    for d in result.decisions:
        action = "keep" if d.keep else delete_word
        print(f"  {action:<12} {d.location}{d.ref.label}/{d.ref.stamp}  {d.reason}")
    for url in result.ignored:
        print(f"  {'ignored':<12} {url}  (not named like a backup)")
    kept, deleted = len(result.kept), len(result.deleted)
    print(f"prune: {kept} kept, {deleted} {delete_word} (retention {args.retention_days:g} days)")
    return 0
