"""gunicorn settings, from the environment (the same for `make run`, the Procfile and Docker)."""

import os

bind = os.environ.get("BIND", f"0.0.0.0:{os.environ.get('PORT', '8000')}")
workers = int(os.environ.get("WEB_CONCURRENCY", "1"))
# Threads, not processes, by default: one process keeps per-process state (and SQLite
# connections) few, and polling requests are short.
worker_class = "gthread"
threads = int(os.environ.get("WEB_THREADS", "8"))
timeout = int(os.environ.get("WEB_TIMEOUT", "30"))
graceful_timeout = 20
accesslog = "-" if os.environ.get("ACCESS_LOG", "true").lower() == "true" else None
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
