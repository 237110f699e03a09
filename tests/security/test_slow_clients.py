"""Finding 7: ten slow clients must not stall /healthz in the documented setup.

The documented production setup (README, docker-compose.yml) exposes only nginx with
deploy/nginx.conf, in front of gunicorn with config/gunicorn.conf.py. No container runs here, so
this starts the same two programs on free local ports: gunicorn with the real config file, and
nginx with deploy/nginx.conf where only the addresses differ (the upstream, the listening port,
the media folder). Ten clients then trickle a POST body to nginx while /healthz is asked through
nginx. The same clients also go straight to gunicorn: with gthread workers they held every
thread and /healthz got no answer; its uvicorn workers (ASGI) answer it meanwhile, and answer
the slow bodies 408 at WEB_BODY_SECONDS.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest

from . import servers
from .servers import ROOT, free_port, wait_for_port

NGINX = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.path.exists(p)), None)
SLOW_CLIENTS = 10
HEALTHZ_DEADLINE = 2.0
# gunicorn's own bound on reading a body (config/body_deadline.py): longer than the load the
# other tests hold, short enough for the test of the bound itself.
BODY_SECONDS = 5.0

pytestmark = pytest.mark.subprocess
needs_nginx = pytest.mark.skipif(NGINX is None, reason="no nginx binary (apt-get install nginx-light)")


def healthz(port: int, timeout: float) -> tuple[float, str]:
    """Seconds until /healthz answered on this port, and its status line ("" if it did not)."""
    started = time.monotonic()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            status = sock.makefile("rb").readline().decode().strip()
    except OSError:  # socket.timeout included: no answer in time
        status = ""
    return time.monotonic() - started, status


@contextmanager
def slow_clients(port: int, count: int = SLOW_CLIENTS) -> Iterator[None]:
    """count anonymous sign-in POSTs announcing 100 kB and sending one byte every half second
    (the audit's attack, scripts/slow2.py), held open until the block ends."""
    stop = threading.Event()
    sockets = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.sendall(
            b"POST /accounts/login/ HTTP/1.1\r\nHost: localhost\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100000\r\n\r\nusername="
        )
        sockets.append(sock)

    def trickle() -> None:
        while not stop.wait(0.5):
            for sock in sockets:
                with suppress(OSError):
                    sock.send(b"a")

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    try:
        time.sleep(1.0)  # every request is in, the first bytes of every body too
        yield
    finally:
        stop.set()
        thread.join()
        for sock in sockets:
            sock.close()


@pytest.fixture(scope="module")
def gunicorn(tmp_path_factory) -> Iterator[int]:
    """gunicorn with config/gunicorn.conf.py and production settings on a free port."""
    with servers.gunicorn(
        tmp_path_factory.mktemp("gunicorn"), ACCESS_LOG="false", WEB_BODY_SECONDS=str(BODY_SECONDS)
    ) as port:
        yield port


def adapted_nginx_conf(upstream_port: int, listen_port: int, media: Path) -> str:
    """deploy/nginx.conf with local addresses instead of the compose service names."""
    conf = (ROOT / "deploy" / "nginx.conf").read_text()
    replacements = {
        "set $atelier_web web:8000;": f"set $atelier_web 127.0.0.1:{upstream_port};",
        "listen 80;": f"listen 127.0.0.1:{listen_port};",
        "alias /data/media/;": f"alias {media}/;",
    }
    for old, new in replacements.items():
        assert conf.count(old) == 1, old
        conf = conf.replace(old, new)
    return conf


@pytest.fixture(scope="module")
def nginx(gunicorn, tmp_path_factory) -> Iterator[int]:
    work = tmp_path_factory.mktemp("nginx")
    port = free_port()
    (work / "atelier.conf").write_text(adapted_nginx_conf(gunicorn, port, work / "media"))
    temp = {name: work / name for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
    for folder in temp.values():
        folder.mkdir()
    # As root, nginx's workers would switch to nobody, who cannot enter pytest's private tmp.
    user = "user root root;\n" if os.geteuid() == 0 else ""
    (work / "nginx.conf").write_text(
        f"{user}daemon off;\nworker_processes 1;\npid {work / 'nginx.pid'};\nerror_log {work / 'error.log'} warn;\n"
        "events { worker_connections 256; }\n"
        "http {\n"
        f"  access_log off;\n  client_body_temp_path {temp['body']};\n  proxy_temp_path {temp['proxy']};\n"
        f"  fastcgi_temp_path {temp['fastcgi']};\n  uwsgi_temp_path {temp['uwsgi']};\n"
        f"  scgi_temp_path {temp['scgi']};\n"
        f"  include {work / 'atelier.conf'};\n"
        "}\n"
    )
    process = subprocess.Popen(
        [str(NGINX), "-p", str(work), "-c", str(work / "nginx.conf")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, process)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_the_nginx_config_buffers_and_bounds_request_bodies():
    conf = (ROOT / "deploy" / "nginx.conf").read_text()
    for directive in (
        "proxy_request_buffering on;",
        "client_max_body_size 1m;",
        "client_body_timeout 10s;",
        "proxy_set_header X-Forwarded-Proto",
        "set $atelier_web web:8000;",
    ):
        assert directive in conf, directive


@needs_nginx
def test_healthz_answers_through_nginx_while_ten_slow_clients_post(nginx, gunicorn):
    assert healthz(nginx, HEALTHZ_DEADLINE)[1] == "HTTP/1.1 200 OK"
    with slow_clients(nginx):
        for _ in range(5):
            seconds, status = healthz(nginx, HEALTHZ_DEADLINE)
            assert status == "HTTP/1.1 200 OK", f"no answer within {HEALTHZ_DEADLINE} s"
            assert seconds < HEALTHZ_DEADLINE
            time.sleep(0.5)


def test_directly_exposed_gunicorn_still_answers_while_the_same_clients_post(gunicorn):
    """Before ASGI the same ten clients straight at gunicorn held all eight of its threads, as
    the audit found, until the body deadline freed them. Its uvicorn workers wait for a slow
    body on the event loop: /healthz is answered meanwhile."""
    with slow_clients(gunicorn):
        for _ in range(3):
            seconds, status = healthz(gunicorn, HEALTHZ_DEADLINE)
            assert status == "HTTP/1.1 200 OK", f"no answer within {HEALTHZ_DEADLINE} s"
            time.sleep(0.5)


@needs_nginx
def test_nginx_refuses_a_body_over_a_megabyte_before_gunicorn_reads_it(nginx):
    with socket.create_connection(("127.0.0.1", nginx), timeout=5) as sock:
        sock.sendall(
            b"POST /accounts/login/ HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 150000000\r\n\r\n"
        )
        assert sock.makefile("rb").readline().decode().strip() == "HTTP/1.1 413 Request Entity Too Large"


@needs_nginx
def test_protected_media_is_internal(nginx):
    with socket.create_connection(("127.0.0.1", nginx), timeout=5) as sock:
        sock.sendall(b"GET /protected-media/anything.png HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        assert sock.makefile("rb").readline().decode().strip() == "HTTP/1.1 404 Not Found"


def test_gunicorn_alone_answers_a_slow_body_408_at_the_body_deadline(gunicorn):
    """Reached directly, the app server bounds a slow body itself (config/body_deadline.py,
    AsgiBodyDeadline): within WEB_BODY_SECONDS each trickling request is answered 408 and its
    connection closed, although the client keeps trickling."""
    sockets = []
    for _ in range(3):
        sock = socket.create_connection(("127.0.0.1", gunicorn), timeout=BODY_SECONDS + 4)
        sock.sendall(
            b"POST /accounts/login/ HTTP/1.1\r\nHost: localhost\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100000\r\n\r\nusername="
        )
        sockets.append(sock)
    started = time.monotonic()
    try:
        for sock in sockets:
            with suppress(OSError):
                sock.send(b"a")
        statuses = [sock.makefile("rb").readline().decode().strip() for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()
    assert statuses == ["HTTP/1.1 408 Request Timeout"] * 3
    assert BODY_SECONDS - 0.5 < time.monotonic() - started < BODY_SECONDS + 4
