# Atelier: `make run` starts it, `make test` checks it. Both work on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
PORT ?= 8000
BIN := $(VENV)/bin
export PORT

# The scale-out run: the same suite on PostgreSQL with the Redis broker and cache.
SCALE_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/test
SCALE_REDIS_URL ?= redis://127.0.0.1:6379/9

.PHONY: run dev static test test-fast lint test-scale bench bench-quick bench-scale wrk messages compilemessages install install-test browser cjk-font migrate clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-test: requirements.txt requirements-test.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-test.txt
	touch $(VENV)/.installed $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test browser cjk-font

# Browser tests drive Debian's Chromium (Playwright's own browser download cannot work offline).
browser:
	@command -v chromium >/dev/null 2>&1 || [ -n "$$CHROMIUM_PATH" ] || scripts/install-chromium

# The offline sketch draws Chinese prompts with the Docker image's CJK font; without one that test skips.
CJK_FONT = /usr/share/fonts/truetype/wqy/wqy-microhei.ttc
cjk-font:
	@[ -e $(CJK_FONT) ] || [ -e /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc ] || scripts/install-cjk-font

# umask 027 wherever run writes: the SQLite database, the media and the cache are for this user
# (and group) only. The first run also generates the per-install SECRET_KEY (config/settings.py).
migrate: install
	umask 027 && $(BIN)/python manage.py migrate --noinput

# With DEBUG off whitenoise serves the hashed copies in staticfiles/ (their manifest included);
# collectstatic skips unchanged files, so this takes about a second.
static: install
	umask 027 && $(BIN)/python manage.py collectstatic --noinput --verbosity 0

# make run: DEBUG off, gunicorn on 127.0.0.1 only (BIND=0.0.0.0 for the network), plain http
# (HTTPS=false: no redirect to https). make dev: the same with DEBUG=true, which wins over a .env
# (honcho reads .env over the environment, then scripts/dev.env over .env).
# honcho runs the Procfile through scripts/supervise.py: Ctrl-C lets a generation in progress
# finish (up to STOP_GRACE_SECONDS, default 60; Ctrl-C again stops at once).
run dev: export HTTPS ?= false
dev: export DEBUG = true
dev: HONCHO_ENV = .env,scripts/dev.env
HONCHO_ENV ?= .env

run dev: migrate static
	umask 027 && $(BIN)/python manage.py create_first_account
	@echo "Starting the web server on http://localhost:$(PORT)/ and a worker; Ctrl-C stops both."
	@if [ "$@" = dev ]; then echo "DEBUG=true (make dev): never expose this to a network."; \
	else echo "DEBUG is off (make dev turns it on); listening on $${BIND:-127.0.0.1}."; fi
	@case "$${BIND:-}" in 0.0.0.0*|::*|"[::]"*) $(BIN)/python -c 'from config.hosts import own_hosts; \
	print("On your network:", " ".join(f"http://{host}:$(PORT)/" for host in own_hosts()[3:]))';; esac
	umask 027 && PATH="$(abspath $(BIN)):$$PATH" exec $(BIN)/python scripts/supervise.py start -f Procfile -e $(HONCHO_ENV) -p $(PORT)

test: install-test
	$(BIN)/python -m pytest

# The suite without the tests that drive Chromium, run a qcluster, start another process or
# talk to the local S3 server (the marks in pytest.ini): a quick check; `make test` runs them all.
test-fast: install-test
	$(BIN)/python -m pytest -m "not browser and not cluster and not subprocess and not s3"

# Style, import order and formatting (ruff), then types (mypy with django-stubs); both must be clean.
lint: install-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test-scale: install-test
	DATABASE_URL=$(SCALE_DATABASE_URL) REDIS_URL=$(SCALE_REDIS_URL) $(BIN)/python -m pytest

# Benchmarks (docs/PERFORMANCE.md): speed and scale as ratios against a bare Django baseline
# measured in the same run; results in bench/results.json. bench-quick is CI's short smoke run.
bench: install wrk
	$(BIN)/python -m bench

bench-quick: install wrk
	$(BIN)/python -m bench --quick

# The scale-out run: 2 web processes and 2 worker clusters on PostgreSQL and Redis, 1,000 tasks
# from 50 people, then a cluster SIGKILLed mid-run (bench/scale.py); bench/results-scale.json,
# whose efficiency `make bench` reports. Drops and creates the database bench_scale, flushes Redis db 10.
bench-scale: install wrk
	$(BIN)/python -m bench.scale

wrk:
	@command -v wrk >/dev/null 2>&1 || scripts/install-wrk

# Translations: extract marked strings into locale/zh_Hans, then compile the translated catalogues.
MESSAGES_IGNORE := --ignore=tests --ignore=bench --ignore=staticfiles --ignore=var
messages: install
	$(BIN)/python manage.py makemessages -l zh_Hans --no-obsolete $(MESSAGES_IGNORE)
	$(BIN)/python manage.py makemessages -d djangojs -l zh_Hans --no-obsolete $(MESSAGES_IGNORE)

compilemessages: install
	$(BIN)/python manage.py compilemessages --ignore=.venv

clean:
	rm -rf $(VENV) var staticfiles
