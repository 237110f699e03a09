"""Backups: one dated archive with the database and the media files, and restoring it.

An archive (`atelier-backup-YYYYmmdd-HHMMSS.tar.gz`, UTC) holds:

- `database/db.sqlite3`: SQLite's online backup API (a consistent copy while the app writes), or
  `database/db.pgdump`: `pg_dump --format=custom` of an exported snapshot (PostgreSQL);
- `media/<name>`: every file the snapshot's rows name (FileFields), local storage only;
- `manifest.json` (last): version, time, engine, rows per model, and the sha256 of every member.

Consistency while tasks run: images are written file-first, then rows. The database is
snapshotted first and only the files its rows name are copied afterwards, so a file written for
a row that is not yet committed is left out, and every copied row's file exists, unless it was
deleted between the snapshot and the copy: such a file is listed as missing and restoring drops
the rows that name it (and any sibling file left without a row). Restored: every file row has
its file, and no file is without a row.

Restoring verifies every checksum before touching anything, refuses a non-empty installation
(users or tasks in the database, files in MEDIA_ROOT) unless forced, replaces the database, then
the media files. Media in an S3 bucket are not copied (say so; back the bucket up with its own
versioning or replication).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import re
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
import time
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import IO, Any

from django.apps import apps
from django.conf import settings
from django.contrib.auth.models import User
from django.core.files.storage import Storage, default_storage
from django.core.management import call_command
from django.db import DEFAULT_DB_ALIAS, connections
from django.db import models as db_models

from audit import log as audit_log
from audit.models import Event

from ..lib.storage import stored_locally
from ..models import Task

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
PREFIX = "atelier-backup-"
SUFFIX = ".tar.gz"
ARCHIVE_NAME = re.compile(r"^atelier-backup-(\d{8}-\d{6})(?:-(\d+))?\.tar\.gz$")
MANIFEST = "manifest.json"
SQLITE_MEMBER = "database/db.sqlite3"
POSTGRES_MEMBER = "database/db.pgdump"
MEDIA = "media/"
CHUNK = 1024 * 1024
PG_TOOLS_HINT = "install the PostgreSQL client tools of the server's major version (Debian: postgresql-client)"


class BackupError(Exception):
    """A backup or restore that cannot go ahead; the message says why, for the operator."""


# --- making a backup ------------------------------------------------------------------------


@dataclass
class Snapshot:
    path: Path
    member: str
    engine: str
    method: str
    counts: dict[str, int]
    files: list[tuple[str, str, str]]  # (model label, field name, stored name)


@dataclass
class BackupResult:
    path: Path
    size: int
    seconds: float
    manifest: dict[str, Any]
    removed: list[Path] = field(default_factory=list)

    def lines(self) -> list[str]:
        media = self.manifest["media"]
        database = self.manifest["database"]
        lines = [
            f"Backup written: {self.path} ({human_size(self.size)}, {self.seconds:.1f} s).",
            f"Database: {database['engine']} ({database['method']}), "
            f"{sum(database['counts'].values())} rows in {len(database['counts'])} tables.",
        ]
        if media["copied"]:
            lines.append(f"Media: {media['count']} files, {human_size(media['bytes'])}.")
        else:
            lines.append(
                "Media: the files live in the S3 bucket and are not copied into the archive; "
                "back the bucket up with its own versioning or replication."
            )
        if media["missing"]:
            lines.append(
                f"Missing: {len(media['missing'])} files were deleted while the backup ran; "
                "restoring drops the rows that name them."
            )
        if self.removed:
            lines.append(f"Rotation: removed {len(self.removed)} older archives.")
        return lines

    def summary(self) -> str:
        return " ".join(self.lines())


def make_backup(dest_dir: Path | str, *, keep: int, using: str = DEFAULT_DB_ALIAS) -> BackupResult:
    """Write one archive into dest_dir, then keep only the newest `keep` archives there."""
    if keep < 1:
        raise BackupError(f"--keep must be at least 1, not {keep}.")
    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    created = datetime.now(UTC)
    final = _free_name(dest, created)
    partial = final.with_name(final.name + ".partial")
    storage = default_storage
    local = stored_locally(storage)
    try:
        with tempfile.TemporaryDirectory(prefix=".backup-", dir=dest) as work:
            snapshot = snapshot_database(Path(work), using)
            # Only the owner may read it: it holds every password hash and token digest.
            partial.touch(mode=0o600)
            with tarfile.open(partial, "w:gz", compresslevel=6) as tar:
                with snapshot.path.open("rb") as dump:
                    database_sha = _add(tar, snapshot.member, dump)
                copied, missing = _add_media(tar, storage, snapshot.files) if local else ({}, [])
                manifest = {
                    "format": "atelier-backup",
                    "version": FORMAT_VERSION,
                    "created_at": created.isoformat(),
                    "database": {
                        "engine": snapshot.engine,
                        "method": snapshot.method,
                        "member": snapshot.member,
                        "sha256": database_sha,
                        "counts": snapshot.counts,
                    },
                    "media": {
                        "storage": "local" if local else "s3",
                        "copied": local,
                        "count": len(copied),
                        "bytes": sum(entry["bytes"] for entry in copied.values()),
                        "files": copied,
                        "missing": missing,
                    },
                }
                _add(tar, MANIFEST, _bytes_reader(json.dumps(manifest, indent=1, sort_keys=True).encode()))
        os.replace(partial, final)
    finally:
        partial.unlink(missing_ok=True)
    removed = rotate(dest, keep)
    result = BackupResult(final, final.stat().st_size, time.monotonic() - started, manifest, removed)
    audit_log.record(
        Event.BACKED_UP,
        detail={
            "archive": final.name,
            "bytes": result.size,
            "media_files": len(copied),
            "media_copied": local,
            "missing": len(missing),
        },
    )
    logger.info("backup written %s bytes=%s seconds=%.1f", final.name, result.size, result.seconds)
    return result


def scheduled_backup() -> str:
    """What the BACKUP_SCHEDULE schedule runs (generator.jobs.make_backup)."""
    return make_backup(settings.BACKUP_DIR, keep=settings.BACKUP_KEEP).summary()


def _free_name(dest: Path, created: datetime) -> Path:
    stamp = created.strftime("%Y%m%d-%H%M%S")
    path, n = dest / f"{PREFIX}{stamp}{SUFFIX}", 1
    while path.exists() or path.with_name(path.name + ".partial").exists():
        n += 1
        path = dest / f"{PREFIX}{stamp}-{n}{SUFFIX}"
    return path


def _add_media(
    tar: tarfile.TarFile, storage: Storage, files: list[tuple[str, str, str]]
) -> tuple[dict[str, dict[str, Any]], list[dict[str, str]]]:
    copied: dict[str, dict[str, Any]] = {}
    missing: list[dict[str, str]] = []
    for label, field_name, name in files:
        if name in copied:
            continue
        try:
            handle = open(storage.path(name), "rb")  # noqa: SIM115 (closed below)
        except FileNotFoundError:
            # Deleted after the snapshot (rows go first, files once that commits).
            missing.append({"model": label, "field": field_name, "name": name})
            continue
        with handle:
            size = os.fstat(handle.fileno()).st_size
            copied[name] = {"sha256": _add(tar, MEDIA + name, handle, size), "bytes": size}
    return copied, missing


class _Hashing:
    def __init__(self, source: IO[bytes]) -> None:
        self.source, self.sha = source, hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self.source.read(size)
        self.sha.update(data)
        return data


def _bytes_reader(data: bytes) -> IO[bytes]:
    return io.BytesIO(data)


def _add(tar: tarfile.TarFile, name: str, source: IO[bytes], size: int | None = None) -> str:
    """Add a member from an open file, returning its sha256 (computed as it is written)."""
    if size is None:
        source.seek(0, os.SEEK_END)
        size = source.tell()
        source.seek(0)
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = size, 0o644, int(time.time())
    reader = _Hashing(source)
    tar.addfile(info, reader)
    return reader.sha.hexdigest()


# --- the database snapshot --------------------------------------------------------------------


def engine_of(using: str = DEFAULT_DB_ALIAS) -> str:
    vendor = connections[using].vendor
    if vendor not in ("sqlite", "postgresql"):
        raise BackupError(f"Backups support SQLite and PostgreSQL, not {vendor}.")
    return vendor


def snapshot_database(work: Path, using: str = DEFAULT_DB_ALIAS) -> Snapshot:
    if engine_of(using) == "sqlite":
        return _snapshot_sqlite(work, using)
    return _snapshot_postgres(work, using)


def _snapshot_sqlite(work: Path, using: str) -> Snapshot:
    path = work / "db.sqlite3"
    connection = connections[using]
    connection.ensure_connection()
    target = sqlite3.connect(path)
    try:
        connection.connection.backup(target)  # one step: a consistent copy, writers wait a moment
        target.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
        cursor = target.cursor()
        tables = {row[0] for row in cursor.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        counts, files = _read_rows(cursor, tables)
    finally:
        target.close()
    return Snapshot(path, SQLITE_MEMBER, "sqlite", "SQLite online backup API", counts, files)


def _snapshot_postgres(work: Path, using: str) -> Snapshot:
    pg_dump = shutil.which("pg_dump")
    if pg_dump is None:
        raise BackupError(f"pg_dump is not installed, so PostgreSQL cannot be backed up: {PG_TOOLS_HINT}.")
    path = work / "db.pgdump"
    wrapper = connections[using]
    # A connection of its own: its transaction exports the snapshot pg_dump reads, and the file
    # list is read in the same snapshot.
    raw = wrapper.get_new_connection(wrapper.get_connection_params())
    try:
        raw.autocommit = False
        cursor = raw.cursor()
        cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        cursor.execute("SELECT pg_export_snapshot()")
        snapshot_id = cursor.fetchone()[0]
        _run(
            [
                pg_dump,
                "--format=custom",
                "--no-owner",
                "--no-privileges",
                f"--snapshot={snapshot_id}",
                f"--file={path}",
            ],
            using,
            "pg_dump",
        )
        cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
        tables = {row[0] for row in cursor.fetchall()}
        counts, files = _read_rows(cursor, tables)
        raw.rollback()
    finally:
        raw.close()
    return Snapshot(path, POSTGRES_MEMBER, "postgresql", "pg_dump of an exported snapshot", counts, files)


def _concrete_models() -> list[type[db_models.Model]]:
    return [
        model
        for model in apps.get_models(include_auto_created=True)
        if model._meta.managed and not model._meta.proxy and not model._meta.swapped
    ]


def _read_rows(cursor: Any, tables: set[str]) -> tuple[dict[str, int], list[tuple[str, str, str]]]:
    """Rows per model and every stored file name, read through a DB-API cursor on the snapshot."""
    counts: dict[str, int] = {}
    files: list[tuple[str, str, str]] = []
    for model in _concrete_models():
        table = model._meta.db_table
        if table not in tables:
            continue
        cursor.execute(f'SELECT COUNT(*) FROM "{table}"')
        counts[model._meta.label_lower] = cursor.fetchone()[0]
        for model_field in model._meta.concrete_fields:
            if isinstance(model_field, db_models.FileField):
                column = model_field.column
                cursor.execute(f'SELECT "{column}" FROM "{table}" WHERE "{column}" <> \'\' ORDER BY 1')
                files += [(model._meta.label_lower, model_field.name, row[0]) for row in cursor.fetchall()]
    return counts, files


def _pg_environment(using: str) -> dict[str, str]:
    """libpq's PG* variables for this database: the password never goes on a command line."""
    params = connections[using].settings_dict
    environment = dict(os.environ)
    for key, variable in (
        ("HOST", "PGHOST"),
        ("PORT", "PGPORT"),
        ("USER", "PGUSER"),
        ("PASSWORD", "PGPASSWORD"),
        ("NAME", "PGDATABASE"),
    ):
        if params.get(key):
            environment[variable] = str(params[key])
    options = params.get("OPTIONS") or {}
    for option in ("sslmode", "sslrootcert", "sslcert", "sslkey", "connect_timeout"):
        if options.get(option) is not None:
            environment[f"PG{option.upper()}"] = str(options[option])
    return environment


def _run(command: list[str], using: str, tool: str, **kwargs: Any) -> subprocess.CompletedProcess:
    done = subprocess.run(command, env=_pg_environment(using), capture_output=True, text=True, **kwargs)
    if done.returncode != 0:
        raise BackupError(f"{tool} failed (exit {done.returncode}): {done.stderr.strip()[-1000:]}")
    return done


# --- rotation and the newest archive ----------------------------------------------------------


def _archive_key(path: Path) -> tuple[str, int] | None:
    match = ARCHIVE_NAME.match(path.name)
    return (match.group(1), int(match.group(2) or 1)) if match else None


def archives(directory: Path | str) -> list[Path]:
    """This directory's backup archives, oldest first (by the time in their names)."""
    try:
        found = [Path(entry.path) for entry in os.scandir(directory) if entry.is_file()]
    except FileNotFoundError:
        return []
    keyed = [(key, path) for path in found if (key := _archive_key(path)) is not None]
    return [path for _key, path in sorted(keyed)]


def rotate(directory: Path, keep: int) -> list[Path]:
    """Delete all but the newest `keep` archives; only files named like our archives."""
    doomed = archives(directory)[:-keep]
    for path in doomed:
        path.unlink(missing_ok=True)
    return doomed


@dataclass(frozen=True)
class LastBackup:
    name: str
    created_at: datetime
    size: int

    @property
    def size_text(self) -> str:
        return human_size(self.size)


def last_backup(directory: Path | str | None = None) -> LastBackup | None:
    """The newest archive's time (from its name, UTC) and size: a directory listing, no reading."""
    found = archives(directory if directory is not None else settings.BACKUP_DIR)
    if not found:
        return None
    newest = found[-1]
    created = datetime.strptime(ARCHIVE_NAME.match(newest.name).group(1), "%Y%m%d-%H%M%S")  # type: ignore[union-attr]
    try:
        size = newest.stat().st_size
    except FileNotFoundError:  # rotated away this instant
        return None
    return LastBackup(newest.name, created.replace(tzinfo=UTC), size)


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"


# --- restoring --------------------------------------------------------------------------------


@dataclass
class RestoreResult:
    archive: Path
    manifest: dict[str, Any]
    files: int
    dropped_rows: int
    dropped_files: int
    seconds: float

    def lines(self) -> list[str]:
        database = self.manifest["database"]
        lines = [
            f"Restored {self.archive.name} (made {self.manifest['created_at']}) in {self.seconds:.1f} s.",
            f"Database: {database['engine']}, {sum(database['counts'].values())} rows in "
            f"{len(database['counts'])} tables.",
        ]
        if self.manifest["media"]["copied"]:
            lines.append(f"Media: {self.files} files.")
        else:
            lines.append("Media: the archive holds no files (they live in the S3 bucket); nothing was copied.")
        if self.dropped_rows or self.dropped_files:
            lines.append(
                f"Dropped {self.dropped_rows} rows whose files were deleted while the backup ran, "
                f"and {self.dropped_files} files left without a row."
            )
        return lines


def restore_backup(archive: Path | str, *, force: bool = False, using: str = DEFAULT_DB_ALIAS) -> RestoreResult:
    """Restore an archive into this installation; see the module docstring for the order."""
    started = time.monotonic()
    archive = Path(archive)
    if not archive.is_file():
        raise BackupError(f"No such archive: {archive}.")
    engine = engine_of(using)
    media_root = Path(settings.MEDIA_ROOT)
    local = stored_locally(default_storage)
    if not force:
        _refuse_unless_empty(using, media_root if local else None)
    if engine == "postgresql":
        _require_pg_tools()
    media_root.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".atelier-restore-", dir=media_root.parent))
    try:
        manifest = _unpack_and_verify(archive, staging)
        if manifest["database"]["engine"] != engine:
            raise BackupError(
                f"This archive holds a {manifest['database']['engine']} database and this installation uses "
                f"{engine}: restore into the same kind of database."
            )
        if manifest["media"]["copied"] and not local:
            raise BackupError("This archive holds media files but media are stored in an S3 bucket here.")
        # Everything checked: from here on the installation changes.
        if engine == "sqlite":
            _restore_sqlite(staging / SQLITE_MEMBER, using)
        else:
            _restore_postgres(staging / POSTGRES_MEMBER, using)
        dropped_rows = _drop_rows_without_files(manifest["media"]["missing"], using)
        files = dropped_files = 0
        if manifest["media"]["copied"]:
            wanted = {name for _label, _field, name in _current_files(using)}
            if force and media_root.exists():
                _empty_directory(media_root)
            files, dropped_files = _move_media(staging / "media", media_root, wanted)
        call_command("migrate", interactive=False, verbosity=0, database=using)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    result = RestoreResult(archive, manifest, files, dropped_rows, dropped_files, time.monotonic() - started)
    audit_log.record(
        Event.RESTORED,
        detail={"archive": archive.name, "created_at": manifest["created_at"], "files": files, "forced": force},
    )
    logger.info("backup restored %s files=%s", archive.name, files)
    return result


def _refuse_unless_empty(using: str, media_root: Path | None) -> None:
    problems = []
    tables = set(connections[using].introspection.table_names())
    users = User.objects.using(using).count() if User._meta.db_table in tables else 0
    tasks = Task.objects.using(using).count() if Task._meta.db_table in tables else 0
    if users or tasks:
        problems.append(f"the database has {users} users and {tasks} tasks")
    if media_root is not None and media_root.exists():
        count = sum(1 for path in media_root.rglob("*") if path.is_file())
        if count:
            problems.append(f"{media_root} holds {count} files")
    if problems:
        raise BackupError(
            "Refusing to restore over a non-empty installation ("
            + "; ".join(problems)
            + "). Restore into an empty one, or pass --force to wipe it first."
        )


def _require_pg_tools() -> None:
    for tool in ("pg_restore", "psql"):
        if shutil.which(tool) is None:
            raise BackupError(f"{tool} is not installed, so PostgreSQL cannot be restored: {PG_TOOLS_HINT}.")


def _safe_member(name: str) -> bool:
    path = PurePosixPath(name)
    return not path.is_absolute() and ".." not in path.parts and name == str(path)


def _unpack_and_verify(archive: Path, staging: Path) -> dict[str, Any]:
    """Extract every member into staging, hashing it; check all against the manifest."""
    hashes: dict[str, str] = {}
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                if not member.isfile() or not _safe_member(member.name):
                    raise BackupError(
                        f"{archive.name} has an unexpected member {member.name!r}: not an Atelier backup."
                    )
                target = staging / member.name
                target.parent.mkdir(parents=True, exist_ok=True)
                source = tar.extractfile(member)
                assert source is not None
                sha = hashlib.sha256()
                with target.open("wb") as out:
                    while chunk := source.read(CHUNK):
                        sha.update(chunk)
                        out.write(chunk)
                hashes[member.name] = sha.hexdigest()
    except (tarfile.TarError, EOFError, OSError, zlib.error) as error:
        raise BackupError(f"{archive.name} is not a readable backup archive ({error}).") from error
    if MANIFEST not in hashes:
        raise BackupError(f"{archive.name} has no manifest.json: not a complete Atelier backup.")
    try:
        manifest = json.loads((staging / MANIFEST).read_text())
        expected = {manifest["database"]["member"]: manifest["database"]["sha256"]}
        expected |= {MEDIA + name: entry["sha256"] for name, entry in manifest["media"]["files"].items()}
        version = manifest["version"]
    except (ValueError, KeyError, TypeError) as error:
        raise BackupError(f"{archive.name} has an unreadable manifest ({error}).") from error
    if version != FORMAT_VERSION:
        raise BackupError(f"{archive.name} is backup format {version}; this Atelier reads format {FORMAT_VERSION}.")
    del hashes[MANIFEST]
    wrong = sorted(name for name in expected if hashes.get(name) != expected[name])
    extra = sorted(set(hashes) - set(expected))
    if wrong or extra:
        raise BackupError(
            f"{archive.name} failed its checksum check: {len(wrong)} members differ from the manifest"
            + (f" ({', '.join(wrong[:5])})" if wrong else "")
            + (f", {len(extra)} members are not in it" if extra else "")
            + ". Nothing was changed."
        )
    return manifest


def _restore_sqlite(snapshot: Path, using: str) -> None:
    connection = connections[using]
    connection.close()
    connection.ensure_connection()
    source = sqlite3.connect(snapshot)
    try:
        source.backup(connection.connection)  # replaces the whole database in one transaction
    finally:
        source.close()
    connection.close()


def _restore_postgres(dump: Path, using: str) -> None:
    """Drop every table of the schema and load the dump, all in one transaction (psql)."""
    connections[using].close()
    database = str(connections[using].settings_dict["NAME"])
    drops = (
        "DO $$ DECLARE r record; BEGIN\n"
        " FOR r IN SELECT tablename FROM pg_tables WHERE schemaname = current_schema() LOOP\n"
        "  EXECUTE 'DROP TABLE IF EXISTS ' || quote_ident(r.tablename) || ' CASCADE'; END LOOP;\n"
        " FOR r IN SELECT sequencename FROM pg_sequences WHERE schemaname = current_schema() LOOP\n"
        "  EXECUTE 'DROP SEQUENCE IF EXISTS ' || quote_ident(r.sequencename) || ' CASCADE'; END LOOP;\n"
        "END $$;\n"
    )
    drop_file = dump.with_name("drop.sql")
    drop_file.write_text(drops)
    environment = _pg_environment(using)
    restore = subprocess.Popen(
        [shutil.which("pg_restore") or "pg_restore", "--no-owner", "--no-privileges", "--file=-", str(dump)],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert restore.stdout is not None
    load = subprocess.run(
        [
            shutil.which("psql") or "psql",
            "--no-psqlrc",
            "--quiet",
            "--single-transaction",
            "--set=ON_ERROR_STOP=1",
            f"--file={drop_file}",
            "--file=-",
            f"--dbname={database}",
        ],
        env=environment,
        stdin=restore.stdout,
        capture_output=True,
        text=True,
    )
    restore.stdout.close()
    restore_errors = restore.stderr.read().decode(errors="replace") if restore.stderr else ""
    restore.wait()
    if restore.returncode != 0:
        raise BackupError(f"pg_restore failed (exit {restore.returncode}): {restore_errors.strip()[-1000:]}")
    if load.returncode != 0:
        raise BackupError(f"psql failed loading the dump (exit {load.returncode}): {load.stderr.strip()[-1000:]}")


def _drop_rows_without_files(missing: list[dict[str, str]], using: str) -> int:
    dropped = 0
    for entry in missing:
        model = apps.get_model(entry["model"])
        deleted, _by_model = model._base_manager.using(using).filter(**{entry["field"]: entry["name"]}).delete()
        dropped += deleted
    return dropped


def _current_files(using: str) -> Iterable[tuple[str, str, str]]:
    for model in _concrete_models():
        for model_field in model._meta.concrete_fields:
            if isinstance(model_field, db_models.FileField):
                names = model._base_manager.using(using).exclude(**{model_field.name: ""})
                for name in names.values_list(model_field.name, flat=True):
                    yield model._meta.label_lower, model_field.name, name


def _empty_directory(directory: Path) -> None:
    for entry in directory.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def _move_media(source: Path, media_root: Path, wanted: set[str]) -> tuple[int, int]:
    moved = dropped = 0
    if not source.exists():
        return 0, 0
    for path in sorted(source.rglob("*")):
        if not path.is_file():
            continue
        name = path.relative_to(source).as_posix()
        if name not in wanted:
            dropped += 1  # its row was dropped (a sibling's file vanished during the backup)
            continue
        target = media_root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(path, target)
        moved += 1
    return moved, dropped
