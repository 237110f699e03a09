"""The Dockerfile, docker-compose.yml and the README's Production section keep their contract.

No Docker engine runs here, so the files are read and checked; every command the Production
section gives (and every manage.py command the image runs) is run for real, with production
settings, in a copy of the project.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from django.conf import settings as django_settings

ROOT = Path(__file__).resolve().parent.parent


# --- Dockerfile --------------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = (ROOT / "Dockerfile").read_text()
    text = re.sub(r"\\\n", " ", text)
    pairs = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            instruction, _, arguments = line.partition(" ")
            pairs.append((instruction.upper(), arguments.strip()))
    return pairs


def final_stage() -> list[tuple[str, str]]:
    instructions = dockerfile_instructions()
    last_from = max(i for i, (name, _) in enumerate(instructions) if name == "FROM")
    return instructions[last_from:]


def image_env() -> dict[str, str]:
    values: dict[str, str] = {}
    for name, arguments in final_stage():
        if name == "ENV":
            values.update(pair.split("=", 1) for pair in shlex.split(arguments))
    return values


def test_the_dockerfile_is_multi_stage_and_copies_only_built_wheels():
    instructions = dockerfile_instructions()
    assert next(args for name, args in instructions if name == "FROM").endswith(" AS build")
    assert sum(name == "FROM" for name, _ in instructions) == 2
    assert ("COPY", "--from=build /wheels /wheels") in final_stage()


def test_the_image_runs_as_a_non_root_user():
    users = [args for name, args in final_stage() if name == "USER"]
    assert users and users[-1] not in {"root", "0"}
    # The user comes before the command and after everything that needs root.
    names = [name for name, _ in final_stage()]
    assert names.index("USER") > max(i for i, name in enumerate(names) if name == "RUN")


def test_static_files_are_collected_at_build_with_production_settings():
    runs = [args for name, args in final_stage() if name == "RUN"]
    collect = [args for args in runs if "collectstatic" in args]
    # A random key for this command only: a constant one would be public, and without any the
    # settings would generate one into SECRET_KEY_FILE, baking it into the image (and into
    # every volume Docker fills from the image).
    assert collect == [
        "DEBUG=false SECRET_KEY=\"$(python -c 'import secrets; print(secrets.token_urlsafe(50))')\" "
        "python manage.py collectstatic --noinput"
    ]


def test_the_image_defaults_to_production_and_binds_all_its_interfaces_explicitly():
    env = image_env()
    assert env["DEBUG"] == "false"
    # The config's default is loopback; in a container the port must be reachable from the
    # nginx service (the compose file publishes only nginx).
    assert env["BIND"] == "0.0.0.0"
    # Without SECRET_KEY in .env, web and worker share a generated key on the config volume.
    assert env["SECRET_KEY_FILE"] == "/data/config/secret_key"
    setup = " ".join(args for name, args in final_stage() if name == "RUN")
    assert "mkdir -p /data/media /data/cache /data/config" in setup and "chmod 700 /data/config" in setup


def test_everything_the_image_runs_starts_with_umask_027():
    (entrypoint,) = [json.loads(args) for name, args in final_stage() if name == "ENTRYPOINT"]
    assert entrypoint == ["/app/scripts/docker-entrypoint"]
    script = (ROOT / "scripts" / "docker-entrypoint").read_text().splitlines()
    commands = [line.strip() for line in script if line.strip() and not line.startswith("#")]
    assert commands == ["umask 027", 'exec "$@"']
    assert os.access(ROOT / "scripts" / "docker-entrypoint", os.X_OK)


def test_the_healthcheck_asks_healthz():
    checks = [args for name, args in final_stage() if name == "HEALTHCHECK"]
    assert len(checks) == 1
    assert "/healthz" in checks[0] and "--timeout=" in checks[0]


def test_the_default_command_migrates_then_execs_gunicorn():
    commands = [args for name, args in final_stage() if name == "CMD"]
    assert len(commands) == 1
    argv = json.loads(commands[0])
    assert argv[:2] == ["sh", "-c"]
    assert argv[2] == "python manage.py migrate --noinput && exec gunicorn config.asgi --config config/gunicorn.conf.py"
    # The Procfile runs the same commands, with umask 027 (database and media files are not
    # readable by other users), the command replacing the shell so it gets the signals.
    procfile = (ROOT / "Procfile").read_text().splitlines()
    assert procfile == [
        "web: umask 027 && exec gunicorn config.asgi --config config/gunicorn.conf.py",
        "worker: umask 027 && exec python manage.py qcluster",
    ]


def test_media_lives_in_a_folder_the_app_user_owns():
    env = image_env()
    assert env["MEDIA_ROOT"] == "/data/media"
    setup = " ".join(args for name, args in final_stage() if name == "RUN")
    assert "mkdir -p /data/media" in setup and "chown -R atelier /data" in setup


def test_the_docker_context_leaves_out_secrets_and_local_state():
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".env", ".venv", ".git", "media", "db.sqlite3*"} <= ignored


# --- docker-compose.yml ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def seconds(duration: str) -> int:
    units = {"s": 1, "m": 60, "h": 3600}
    return sum(int(number) * units[unit] for number, unit in re.findall(r"(\d+)([smh])", duration))


def test_compose_runs_web_worker_postgres_redis_and_nginx(compose):
    assert set(compose["services"]) == {"web", "worker", "postgres", "redis", "nginx"}
    assert {"media", "config", "postgres-data", "redis-data"} <= set(compose["volumes"])
    assert "postgres-data:/var/lib/postgresql/data" in compose["services"]["postgres"]["volumes"]


def test_web_and_worker_are_the_same_image_with_the_same_settings(compose):
    web, worker = compose["services"]["web"], compose["services"]["worker"]
    assert web["build"] == worker["build"] == "."
    assert web["image"] == worker["image"]
    assert web["env_file"] == worker["env_file"] == ".env"
    assert web["volumes"] == worker["volumes"] == ["media:/data/media", "config:/data/config"]
    for name in ("DEBUG", "DATABASE_URL", "REDIS_URL"):
        assert web["environment"][name] == worker["environment"][name]
    assert web["environment"]["DEBUG"] == "false"
    assert web["environment"]["DATABASE_URL"].startswith("postgres://atelier:${POSTGRES_PASSWORD:?")
    assert web["environment"]["DATABASE_URL"].endswith("@postgres:5432/atelier")
    assert web["environment"]["REDIS_URL"].startswith("redis://redis:6379/")


def test_web_uses_the_image_command_after_postgres_and_redis_are_healthy(compose):
    web = compose["services"]["web"]
    assert "command" not in web  # the image's: migrate, then gunicorn
    assert "healthcheck" not in web  # the image's HEALTHCHECK on /healthz
    assert web["depends_on"] == {
        "postgres": {"condition": "service_healthy"},
        "redis": {"condition": "service_healthy"},
    }
    # Not published: only nginx reaches it (finding 7, slow clients).
    assert "ports" not in web and "expose" not in web


def test_nginx_is_the_only_published_service_and_buffers_for_the_web(compose):
    published = {name for name, service in compose["services"].items() if "ports" in service}
    assert published == {"nginx"}
    nginx = compose["services"]["nginx"]
    assert nginx["ports"] == ["127.0.0.1:8080:80"]
    assert "./deploy/nginx.conf:/etc/nginx/conf.d/default.conf:ro" in nginx["volumes"]
    # x-accel: nginx reads the media volume, never writes it.
    assert "media:/data/media:ro" in nginx["volumes"]
    assert nginx["depends_on"] == {"web": {"condition": "service_healthy"}}
    conf = (ROOT / "deploy" / "nginx.conf").read_text()
    for directive in ("set $atelier_web web:8000;", "proxy_request_buffering on;", "client_max_body_size 1m;"):
        assert directive in conf, directive


def test_the_worker_runs_qcluster_after_the_migrations(compose):
    worker = compose["services"]["worker"]
    assert worker["command"] == ["python", "manage.py", "qcluster"]
    assert worker["depends_on"]["web"] == {"condition": "service_healthy"}
    assert worker["healthcheck"] == {"disable": True}
    assert "ports" not in worker


def test_a_stopping_worker_gets_longer_than_one_task_may_take(compose):
    assert seconds(compose["services"]["worker"]["stop_grace_period"]) > django_settings.TASK_TIMEOUT


def test_postgres_and_redis_report_their_health(compose):
    postgres, redis = compose["services"]["postgres"], compose["services"]["redis"]
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert postgres["environment"]["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")
    assert "ping" in redis["healthcheck"]["test"]


def test_every_variable_compose_needs_is_in_the_env_example(compose):
    text = (ROOT / "docker-compose.yml").read_text()
    needed = set(re.findall(r"\$\{([A-Z0-9_]+)", text))
    listed = set(re.findall(r"^# ([A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), flags=re.MULTILINE))
    assert needed and needed <= listed


# --- the README's Production section -----------------------------------------------------------


def production_section() -> str:
    readme = (ROOT / "README.md").read_text()
    match = re.search(r"^## Production\n(.*?)(?=^## )", readme, flags=re.MULTILINE | re.DOTALL)
    assert match, "README.md has no Production section"
    return match.group(1)


def code_blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", production_section(), flags=re.MULTILINE | re.DOTALL)


def readme_commands() -> list[str]:
    return [line.strip() for block in code_blocks("sh") for line in block.splitlines() if line.strip()]


IN_THE_WEB_CONTAINER = "docker compose exec web "


def test_the_production_section_gives_only_commands_that_are_checked():
    commands = readme_commands()
    assert commands[:2] == ["cp .env.example .env", "docker compose up -d --build"]
    for command in commands[2:]:
        # Everything else is a manage.py command in the web container, run for real below.
        assert command.startswith(IN_THE_WEB_CONTAINER + "python manage.py "), command
    assert (ROOT / ".env.example").is_file()
    assert ".env" in (ROOT / ".gitignore").read_text().split()


def test_the_production_checklist_names_what_production_needs():
    text = production_section()
    for name in (
        "SECRET_KEY",
        "ALLOWED_HOSTS",
        "CSRF_TRUSTED_ORIGINS",
        "DEBUG=false",
        "X-Forwarded-Proto",
        "DATABASE_URL",
        "REDIS_URL",
        "WEB_CONCURRENCY",
        "STORAGE=s3",
        "S3_BUCKET",
        "SERVE_MEDIA_WITH=x-accel",
        "X-Accel-Redirect",
        "POSTGRES_PASSWORD",
        # Finding 7: only a buffering proxy is exposed.
        "deploy/nginx.conf",
        "proxy_request_buffering on",
        "client_max_body_size 1m",
        "Never publish gunicorn",
    ):
        assert name in text, name


def test_the_nginx_snippet_matches_the_x_accel_prefix_and_the_media_folder():
    (snippet,) = code_blocks("nginx")
    conf = (ROOT / "deploy" / "nginx.conf").read_text()
    for text in (snippet, conf):
        assert f"location {django_settings.X_ACCEL_PREFIX} {{" in text
        assert "internal;" in text
        assert f"alias {image_env()['MEDIA_ROOT']}/;" in text


@pytest.fixture(scope="module")
def project_copy(tmp_path_factory) -> Path:
    """The project without local state: what the image contains (.dockerignore)."""
    target = tmp_path_factory.mktemp("image") / "app"
    ignore = shutil.ignore_patterns(
        ".venv", ".git", "media", "var", "staticfiles", "db.sqlite3*", ".env", "__pycache__", "tests", "node_modules"
    )
    shutil.copytree(ROOT, target, ignore=ignore)
    return target


def run_in_image(project: Path, command: str) -> subprocess.CompletedProcess:
    """A shell command as the container runs it: production settings from the environment,
    a fresh database of its own (SQLite here; compose gives it PostgreSQL)."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_", "REDIS_", "S3_", "STORAGE"))
    }
    env.update(
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="atelier.example.com",
        CSRF_TRUSTED_ORIGINS="https://atelier.example.com",
        DATABASE_URL=f"sqlite:///{project / 'db.sqlite3'}",
        MEDIA_ROOT=str(project / "media"),
        CACHE_DIR=str(project / "cache"),
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
    )
    return subprocess.run(
        ["sh", "-c", command], check=False, cwd=project, env=env, capture_output=True, text=True, timeout=240
    )


@pytest.mark.subprocess
def test_the_images_and_the_readmes_commands_work_with_production_settings(project_copy):
    build = [args for name, args in final_stage() if name == "RUN" and "manage.py" in args]
    # The container's start: the part of its command before gunicorn.
    (start,) = [json.loads(args)[2].split(" && exec gunicorn")[0] for name, args in final_stage() if name == "CMD"]
    commands = build + [start] + [command.removeprefix(IN_THE_WEB_CONTAINER) for command in readme_commands()[2:]]
    for command in commands:
        result = run_in_image(project_copy, command)
        assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
        if "check --deploy" in command:
            assert "no issues" in result.stdout, result.stdout + result.stderr
        if "create_first_account" in command:
            assert "Created the first account" in result.stdout
    assert (project_copy / "staticfiles" / "staticfiles.json").is_file()
