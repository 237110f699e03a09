"""manage.py backup and restore (generator.ops.backups), on the configured database engine.

The round trips restore into a second, empty installation: `manage.py migrate` then `manage.py
restore` in a subprocess with another DATABASE_URL and MEDIA_ROOT (a fresh SQLite file, or a
fresh PostgreSQL database on the same server), and compare what `manage.py dumpdata` prints
there with this database, and the files' sha256 with this MEDIA_ROOT. CI runs the suite on
SQLite and again on PostgreSQL, so both engines are covered by the same tests.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import subprocess
import sys
import tarfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command
from django.db import connection
from django.urls import reverse
from django.utils import timezone
from django_q.models import Schedule

from audit.models import AuditEntry, Event
from generator import jobs, services
from generator.models import Image, Task
from generator.ops import backups, schedules
from generator.ops.backups import BackupError
from generator.scheduler.inline import run_task
from generator.services import TaskSettings

from .cluster import BASE_DIR, FINAL_STATUSES, database_url, wait_for_final
from .factories import TaskFactory, UserFactory

ON_POSTGRES = connection.vendor == "postgresql"
NOT_COMPARED = ["audit.auditentry", "sessions.session"]  # backup and restore each add an audit entry


# --- helpers ---------------------------------------------------------------------------------


@dataclass
class Installation:
    """Another Atelier installation on this machine: its own database and MEDIA_ROOT."""

    database_url: str
    media_root: Path

    def manage(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        environment = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "DATABASE_URL": self.database_url,
            "MEDIA_ROOT": str(self.media_root),
            "Q_SYNC": "true",
        }
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=BASE_DIR,
            env=environment,
            capture_output=True,
            text=True,
            timeout=240,
        )
        if check:
            assert done.returncode == 0, done.stderr[-3000:]
        return done

    def rows(self) -> list[dict]:
        return json.loads(self.manage("dumpdata", *[f"--exclude={label}" for label in NOT_COMPARED]).stdout)


@pytest.fixture
def empty_installation(tmp_path) -> Iterator[Installation]:
    """A second installation, migrated and empty, on the engine this run uses."""
    if ON_POSTGRES:
        name = f"atelier_restore_{uuid.uuid4().hex[:12]}"
        _postgres_admin(f'CREATE DATABASE "{name}"')
        url = database_url({**connection.settings_dict, "NAME": name})
    else:
        name, url = "", f"sqlite:///{tmp_path / 'restored.sqlite3'}"
    installation = Installation(url, tmp_path / "restored-media")
    installation.manage("migrate", "--verbosity=0")
    yield installation
    if ON_POSTGRES:
        _postgres_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _postgres_admin(statement: str) -> None:
    import psycopg

    params = connection.get_connection_params()
    params["dbname"] = "postgres"
    with psycopg.connect(**params, autocommit=True) as admin:
        admin.execute(statement)


def checksums(root: Path) -> dict[str, str]:
    return {
        path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(Path(root).rglob("*"))
        if path.is_file()
    }


def local_rows() -> list[dict]:
    out = io.StringIO()
    call_command("dumpdata", exclude=NOT_COMPARED, stdout=out)
    return json.loads(out.getvalue())


def seed(people: int = 2, tasks_each: int = 2) -> list[Task]:
    """People with completed tasks (two images each: four files per task)."""
    made, before = [], Image.objects.count()
    for _ in range(people):
        owner = UserFactory()
        for _ in range(tasks_each):
            task = TaskFactory(owner=owner, num_images=2)
            run_task(str(task.pk))
            made.append(task)
    assert Image.objects.count() - before == people * tasks_each * 2
    return made


def consistent(installation: Installation) -> tuple[int, int]:
    """(image rows, files) of an installation, asserting every row has its files and every
    file belongs to a row."""
    names = installation.manage(
        "shell",
        "-c",
        "import json; from generator.models import Image; "
        "print(json.dumps([[i.file.name, i.thumbnail.name] for i in Image.objects.all()]))",
    ).stdout
    rows = json.loads(names.strip().splitlines()[-1])
    named = {name for pair in rows for name in pair}
    on_disk = set(checksums(installation.media_root))
    assert named - on_disk == set(), "rows without their file"
    assert on_disk - named == set(), "files without a row"
    return len(rows), len(on_disk)


# --- round trips ---------------------------------------------------------------------------


@pytest.mark.subprocess
def test_backup_then_restore_into_an_empty_installation_gives_the_same_rows_and_files(
    transactional_db, media_root, tmp_path, empty_installation
):
    seed()
    files_before = checksums(media_root)
    assert len(files_before) == 16

    result = backups.make_backup(tmp_path / "backups", keep=3)

    assert result.path.name.startswith("atelier-backup-") and result.path.name.endswith(".tar.gz")
    manifest = result.manifest
    assert manifest["database"]["engine"] == connection.vendor
    assert manifest["database"]["counts"]["generator.image"] == 8
    assert manifest["media"]["count"] == 16
    assert {name: entry["sha256"] for name, entry in manifest["media"]["files"].items()} == files_before
    assert AuditEntry.objects.filter(event=Event.BACKED_UP).count() == 1

    done = empty_installation.manage("restore", str(result.path))

    assert "Media: 16 files." in done.stdout
    assert empty_installation.rows() == local_rows()
    assert checksums(empty_installation.media_root) == files_before
    restored_audit = empty_installation.manage(
        "shell",
        "-c",
        "from audit.models import AuditEntry; print(list(AuditEntry.objects.values_list('event', flat=True)))",
    ).stdout
    assert "'restored'" in restored_audit


@pytest.mark.subprocess
def test_restore_refuses_a_non_empty_installation_unless_forced(transactional_db, tmp_path, empty_installation):
    seed(people=1, tasks_each=1)
    first = backups.make_backup(tmp_path / "backups", keep=3).path
    empty_installation.manage("restore", str(first))
    rows, files = empty_installation.rows(), checksums(empty_installation.media_root)
    seed(people=1, tasks_each=1)  # the second archive differs from what is restored there
    second = backups.make_backup(tmp_path / "backups", keep=3).path

    refused = empty_installation.manage("restore", str(second), check=False)

    assert refused.returncode == 1
    assert "Refusing to restore over a non-empty installation (the database has 1 users and 1 tasks;" in refused.stderr
    assert "pass --force" in refused.stderr
    assert empty_installation.rows() == rows and checksums(empty_installation.media_root) == files

    empty_installation.manage("restore", "--force", str(second))
    assert empty_installation.rows() == local_rows()
    assert consistent(empty_installation) == (4, 8)


@pytest.mark.cluster
@pytest.mark.subprocess
def test_a_backup_taken_while_twenty_tasks_generate_restores_consistently(
    start_qcluster, settings, tmp_path, empty_installation
):
    settings.MAX_QUEUED_TASKS_PER_USER = 100
    start_qcluster(OFFLINE_DELAY_SECONDS="0.3", Q_WORKERS="2")
    owner = UserFactory()
    tasks = [
        services.create_task(
            owner,
            TaskSettings(
                prompt=f"a kite {n}", provider="offline", model="sketch-v1", width=128, height=128, num_images=2
            ),
        )
        for n in range(20)
    ]
    # Backups one after another until every task is final: some catch tasks half-written.
    archives, deadline = [], time.monotonic() + 120
    while Task.objects.exclude(status__in=FINAL_STATUSES).exists() and time.monotonic() < deadline:
        archives.append(backups.make_backup(tmp_path / "backups", keep=1000))
        time.sleep(0.1)
    for task in tasks:
        assert wait_for_final(task, timeout=120).status == Task.Status.COMPLETED
    # A backup taken mid-way: some tasks done, some not (files of uncommitted rows left out).
    done_counts = [result.manifest["database"]["counts"]["generator.image"] for result in archives]
    middle = next((r for r in archives if 0 < r.manifest["database"]["counts"]["generator.image"] < 40), None)
    assert middle is not None, f"no backup caught the tasks mid-way: {done_counts}"
    print(f"backups while generating: images per archive {done_counts}")

    empty_installation.manage("restore", str(middle.path))

    images = middle.manifest["database"]["counts"]["generator.image"]
    assert consistent(empty_installation) == (images, images * 2)


@pytest.mark.subprocess
def test_a_file_deleted_while_the_backup_runs_drops_its_row_on_restore(
    transactional_db, tmp_path, monkeypatch, empty_installation
):
    seed(people=1, tasks_each=2)
    doomed = Image.objects.order_by("created_at").first()
    real_snapshot = backups.snapshot_database

    def snapshot_then_delete(*args, **kwargs):
        taken = real_snapshot(*args, **kwargs)
        services.delete_images(Image.objects.filter(pk=doomed.pk))  # the row now, its files once committed
        return taken

    monkeypatch.setattr(backups, "snapshot_database", snapshot_then_delete)
    result = backups.make_backup(tmp_path / "backups", keep=3)

    assert result.manifest["media"]["missing"] == [
        {"model": "generator.image", "field": "file", "name": doomed.file.name},
        {"model": "generator.image", "field": "thumbnail", "name": doomed.thumbnail.name},
    ]
    assert "Missing: 2 files were deleted while the backup ran" in " ".join(result.lines())
    done = empty_installation.manage("restore", str(result.path))
    assert "Dropped 1 rows whose files were deleted" in done.stdout
    assert consistent(empty_installation) == (3, 6)


# --- refusals that change nothing ---------------------------------------------------------------


def _rewrite(archive: Path, target: Path, change) -> Path:
    with tarfile.open(archive, "r:gz") as source, tarfile.open(target, "w:gz") as out:
        for member in source:
            data = source.extractfile(member).read()
            data = change(member.name, data)
            member.size = len(data)
            out.addfile(member, io.BytesIO(data))
    return target


def test_a_corrupted_archive_is_refused_with_a_clear_message_and_nothing_changes(
    transactional_db, media_root, tmp_path
):
    seed(people=1, tasks_each=1)
    archive = backups.make_backup(tmp_path / "backups", keep=3).path
    victim = sorted(checksums(media_root))[0]
    corrupted = _rewrite(
        archive,
        tmp_path / "corrupted.tar.gz",
        lambda name, data: data[:-1] + bytes([data[-1] ^ 1]) if name == "media/" + victim else data,
    )
    truncated = tmp_path / "truncated.tar.gz"
    truncated.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    rows, files = local_rows(), checksums(media_root)

    with pytest.raises(BackupError, match=r"corrupted.tar.gz failed its checksum check: 1 members differ") as error:
        backups.restore_backup(corrupted, force=True)
    assert victim in str(error.value) and "Nothing was changed." in str(error.value)
    with pytest.raises(CommandError, match=r"truncated.tar.gz is not a readable backup archive"):
        call_command("restore", str(truncated), "--force")

    assert local_rows() == rows and checksums(media_root) == files
    assert not list(media_root.parent.glob(".atelier-restore-*"))  # the staging is cleaned up


def test_an_archive_of_the_other_engine_or_no_archive_is_refused(transactional_db, tmp_path):
    archive = backups.make_backup(tmp_path / "backups", keep=3).path
    other = "postgresql" if connection.vendor == "sqlite" else "sqlite"

    def other_engine(name: str, data: bytes) -> bytes:
        if name != "manifest.json":
            return data
        manifest = json.loads(data)
        manifest["database"]["engine"] = other
        return json.dumps(manifest).encode()

    with pytest.raises(BackupError, match=f"holds a {other} database and this installation uses {connection.vendor}"):
        backups.restore_backup(_rewrite(archive, tmp_path / "other.tar.gz", other_engine), force=True)
    with pytest.raises(CommandError, match="No such archive"):
        call_command("restore", str(tmp_path / "nothing.tar.gz"))


# --- rotation, the command, the schedule, the overview -------------------------------------------


def test_backup_keeps_the_newest_n_archives_and_leaves_other_files_alone(transactional_db, tmp_path):
    directory = tmp_path / "backups"
    directory.mkdir()
    (directory / "notes.txt").write_text("mine")
    for stamp in ("20240101-000000", "20240102-000000", "20240103-000000"):
        (directory / f"atelier-backup-{stamp}.tar.gz").write_bytes(b"old")
    out = io.StringIO()

    call_command("backup", "--dir", str(directory), "--keep", "2", stdout=out)

    kept = sorted(path.name for path in directory.iterdir())
    assert len(kept) == 3 and kept[0] == "atelier-backup-20240103-000000.tar.gz" and kept[2] == "notes.txt"
    newest = directory / kept[1]
    assert newest.stat().st_mode & 0o777 == 0o600  # password hashes and token digests: the owner's only
    assert "Rotation: removed 2 older archives." in out.getvalue()
    with pytest.raises(CommandError, match="--keep must be at least 1, not 0"):
        call_command("backup", "--dir", str(directory), "--keep", "0")


def test_the_schedule_is_off_by_default_and_runs_the_same_backup(transactional_db, settings, tmp_path):
    schedules.install_schedules()
    assert not Schedule.objects.filter(name=schedules.BACKUP_SCHEDULE_NAME).exists()

    settings.BACKUP_SCHEDULE = "daily"
    settings.BACKUP_DIR = tmp_path / "scheduled"
    settings.BACKUP_KEEP = 1
    schedules.install_schedules()
    schedule = Schedule.objects.get(name=schedules.BACKUP_SCHEDULE_NAME)
    assert (schedule.func, schedule.schedule_type) == ("generator.jobs.make_backup", Schedule.DAILY)
    summary = jobs.make_backup()
    jobs.make_backup()
    assert summary.startswith(f"Backup written: {settings.BACKUP_DIR}")
    assert len(backups.archives(settings.BACKUP_DIR)) == 1

    settings.BACKUP_SCHEDULE = "every full moon"
    with pytest.raises(ImproperlyConfigured, match="BACKUP_SCHEDULE='every full moon'"):
        schedules.install_schedules()
    settings.BACKUP_SCHEDULE = ""
    schedules.install_schedules()
    assert not Schedule.objects.filter(name=schedules.BACKUP_SCHEDULE_NAME).exists()


def test_the_admin_overview_shows_the_last_backup(client, transactional_db, settings, tmp_path):
    settings.BACKUP_DIR = tmp_path / "backups"
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    page = client.get(reverse("admin:generator_overview")).content.decode()
    assert '<p id="overview-backup">Last backup: none yet</p>' in page

    result = backups.make_backup(settings.BACKUP_DIR, keep=2)

    page = client.get(reverse("admin:generator_overview")).content.decode()
    made = timezone.localtime(datetime.strptime(result.path.name[15:30], "%Y%m%d-%H%M%S").replace(tzinfo=UTC))
    assert f"Last backup: {made:%Y-%m-%d %H:%M:%S} {made.tzname()}, {result.size / 1024:.1f} KB</p>" in page


# --- PostgreSQL's tools ----------------------------------------------------------------------


@pytest.mark.skipif(not ON_POSTGRES, reason="pg_dump is used on PostgreSQL only")
def test_the_database_password_never_appears_in_commands_logs_or_output(
    transactional_db, settings, tmp_path, monkeypatch, caplog, capsys
):
    secret = "pw-" + uuid.uuid4().hex  # trust authentication on the test server ignores it
    connection.settings_dict["PASSWORD"] = secret
    commands: list[list[str]] = []
    real_run = subprocess.run

    def recording_run(command, *args, **kwargs):
        commands.append(list(command))
        return real_run(command, *args, **kwargs)

    monkeypatch.setattr(backups.subprocess, "run", recording_run)
    try:
        with caplog.at_level(logging.DEBUG):
            call_command("backup", "--dir", str(tmp_path / "backups"))
            monkeypatch.setattr(backups.shutil, "which", lambda tool: None)
            with pytest.raises(CommandError, match="pg_dump is not installed, so PostgreSQL cannot be backed up"):
                call_command("backup", "--dir", str(tmp_path / "backups"))
    finally:
        connection.settings_dict["PASSWORD"] = ""
    captured = capsys.readouterr()
    assert commands and all(secret not in " ".join(command) for command in commands)
    assert secret not in caplog.text and secret not in captured.out + captured.err
    assert User.objects.count() == 0
