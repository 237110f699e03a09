"""The run's scratch directory and the environment every app process gets.

The app is configured as the README's production setup (DEBUG=false, a SECRET_KEY,
ALLOWED_HOSTS) with the embedded defaults: SQLite, the ORM broker, local media, the
offline provider. Phases add what they vary (REDIS_URL, Q_WORKERS, OFFLINE_DELAY_SECONDS).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


@dataclass
class WorkDir:
    root: Path

    @classmethod
    def create(cls) -> WorkDir:
        parent = os.environ.get("BENCH_WORKDIR") or None
        return cls(Path(tempfile.mkdtemp(prefix="atelier-bench-", dir=parent)))

    @property
    def database(self) -> Path:
        return self.root / "bench.sqlite3"

    @property
    def baseline_database(self) -> Path:
        return self.root / "baseline.sqlite3"

    @property
    def media(self) -> Path:
        return self.root / "media"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def data(self, name: str) -> Path:
        return self.root / name

    def app_env(self, **overrides: object) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if not key.startswith(("DJANGO_", "Q_", "REDIS_"))}
        env.update(
            {
                "DJANGO_SETTINGS_MODULE": "config.settings",
                "PYTHONUNBUFFERED": "1",
                "DEBUG": "false",
                "SECRET_KEY": "bench-" + "k" * 60,
                "ALLOWED_HOSTS": "127.0.0.1,localhost",
                "DATABASE_URL": f"sqlite:///{self.database}",
                "MEDIA_ROOT": str(self.media),
                "CACHE_DIR": str(self.root / "cache"),
                # The pipeline submits far more tasks at once than one person may.
                "MAX_QUEUED_TASKS_PER_USER": "1000000",
                # wrk calls the API task endpoint thousands of times a second, as one person.
                "API_RATE": "1000000000/s",
                # Explicitly empty, so a developer's .env cannot switch the broker underneath.
                "REDIS_URL": "",
            }
        )
        env.update({key: str(value) for key, value in overrides.items()})
        return env

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
