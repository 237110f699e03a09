"""gunicorn settings, from the environment (the same for `make run`, the Procfile and Docker)."""

import os


def bind_address(bind: str, port: str) -> str:
    """BIND as given, with PORT added when it names only a host ("0.0.0.0", "[::]")."""
    if bind.startswith(("unix:", "fd://")) or bind.rpartition(":")[2].isdigit():
        return bind
    return f"{bind}:{port}"


# Loopback unless asked otherwise: `make run` is for this machine, and the Docker image says
# BIND=0.0.0.0 itself (its port is reached only through the proxy in docker-compose.yml).
bind = bind_address(os.environ.get("BIND", "127.0.0.1"), os.environ.get("PORT", "8000"))
workers = int(os.environ.get("WEB_CONCURRENCY", "1"))
# ASGI: each process serves config/asgi.py on one event loop (uvicorn's worker, with the access
# log and shutdown of config/asgi_server.py). An open page's event stream waits there without a
# thread; ordinary views run on WEB_THREADS threads per process (config/asgi_site.py), as the
# gthread worker ran them. One process by default keeps per-process state (and SQLite
# connections) few.
worker_class = "config.asgi_server.Worker"
# The worker must tell gunicorn it is alive this often, or it is restarted. Slow clients are
# nginx's to absorb (deploy/nginx.conf buffers whole requests before passing them); reached
# directly, a body must arrive within WEB_BODY_SECONDS (config/body_deadline.py).
timeout = int(os.environ.get("WEB_TIMEOUT", "30"))
# On a stop, requests in progress get this long; open event streams end at once (config/asgi.py).
graceful_timeout = 20
accesslog = "-" if os.environ.get("ACCESS_LOG", "true").lower() == "true" else None
# Searches carry people's words in the query string (?q=…), and a referer repeats the page's:
# the access log keeps the path only, unless LOG_PROMPTS=true asks for prompts in the logs.
if os.environ.get("LOG_PROMPTS", "false").lower() != "true":
    access_log_format = '%(h)s %(l)s %(u)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s "%(a)s"'
# Which peers' X-Forwarded-* gunicorn itself would believe. The uvicorn worker leaves them all to
# the app (config/asgi_server.py: REMOTE_ADDR stays the peer; TRUSTED_PROXIES decides the client,
# SECURE_PROXY_SSL_HEADER the scheme), so this only matters to another worker class.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
# gunicorn 27's control socket defaults to one path per user ($XDG_RUNTIME_DIR/gunicorn.ctl or
# ~/.gunicorn/gunicorn.ctl): a second instance of that user would take over the first's. Nothing
# here uses gunicornc, so there is none.
control_socket_disable = True
