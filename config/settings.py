"""Atelier settings: everything comes from the environment (django-environ).

The defaults need nothing installed: SQLite, the django-q2 ORM broker on the same
database, local private media and the offline provider. They are also safe: DEBUG is off
unless asked for (`make dev`), and without SECRET_KEY a random per-install key is generated
once into SECRET_KEY_FILE. DATABASE_URL, REDIS_URL and ALLOWED_HOSTS switch to production values.
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path
from urllib.parse import urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from config.hosts import own_hosts
from usage import config as usage_config

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.FileAwareEnv()
# A local .env configures the app; the test settings (tests.settings) never read it.
if (BASE_DIR / ".env").is_file() and os.environ.get("DJANGO_SETTINGS_MODULE", "config.settings") == "config.settings":
    environ.Env.read_env(BASE_DIR / ".env")

# --- core -------------------------------------------------------------------------------

# Off unless asked for: a debug page shows source, settings and paths to whoever triggers a 500.
DEBUG = env.bool("DEBUG", default=False)


def secret_key_file() -> Path:
    """SECRET_KEY_FILE, else the user's configuration folder: outside the repository (never
    committed or copied into an image) and the same file for the web server and the worker."""
    configured = os.environ.get("SECRET_KEY_FILE", "")
    if configured:
        return Path(configured).expanduser()
    config_home = os.environ.get("XDG_CONFIG_HOME", "")
    # The XDG spec says a relative XDG_CONFIG_HOME is invalid and must be ignored.
    base = Path(config_home) if os.path.isabs(config_home) else Path.home() / ".config"
    return base / "atelier" / "secret_key"


def per_install_secret_key(path: Path) -> str:
    """The key stored in path; on first use a new random one, created 0600 in a 0700 folder.

    Written to a private temporary file and published with link(), which fails if the file
    exists: a web server and a worker starting together both end up with the first key
    written, never with a half-written or a second one."""
    try:
        key = path.read_text().strip()
    except FileNotFoundError:
        key = ""
    except OSError as error:
        raise ImproperlyConfigured(
            f"Cannot read SECRET_KEY_FILE {path} ({error.strerror}): set SECRET_KEY, or SECRET_KEY_FILE "
            "to a readable file or a writable place for a new one."
        ) from None
    if key:
        return key
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.fchmod(descriptor, 0o600)  # whatever the umask
            os.write(descriptor, (secrets.token_urlsafe(50) + "\n").encode())
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        try:
            os.link(temporary, path)
            print(f"Atelier: generated a new SECRET_KEY in {path} (mode 0600).", file=sys.stderr)
        except FileExistsError:
            pass  # another process got there first: use its key
        finally:
            temporary.unlink()
        return path.read_text().strip()
    except OSError as error:
        raise ImproperlyConfigured(
            f"No SECRET_KEY is set and SECRET_KEY_FILE {path} cannot be created ({error.strerror}): "
            "set SECRET_KEY, or SECRET_KEY_FILE to a writable path."
        ) from None


# SECRET_KEY from the environment (or .env) wins; there is no built-in default key, because a
# public one lets anyone sign sessions, messages and queued tasks.
SECRET_KEY = os.environ.get("SECRET_KEY", "").strip() or per_install_secret_key(secret_key_file())
if not DEBUG and (len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5 or SECRET_KEY.startswith("django-insecure-")):
    # The value itself is never shown: it may be a real key that is merely short.
    raise ImproperlyConfigured(
        "SECRET_KEY is too weak for DEBUG=false: it needs at least 50 characters, at least 5 of them "
        "different, and no django-insecure- prefix. Unset SECRET_KEY to use a generated per-install key, "
        "or set one made by: python -c 'import secrets; print(secrets.token_urlsafe(50))'"
    )
# The host names requests may use (others get 400). Unset: localhost and this machine's own names
# and addresses (config.hosts), so `BIND=0.0.0.0 make run` answers at http://<its LAN address>:8000/.
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[]) or own_hosts()
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

ATELIER_VERSION = "0.1.0"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_htmx",
    # Before django_q: its `qcluster` command is generator's, which adds the dispatcher.
    "generator",
    "django_q",
    "django_ratelimit",
    "csp",
    "accounts",
    "usage",
    "gateway",
    "sharing",
    "prompts",
    "audit",
]

MIDDLEWARE = [
    "generator.ops.health.HealthMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The language: the switcher's cookie, else the browser's Accept-Language (zh-CN → zh-hans).
    "django.middleware.locale.LocaleMiddleware",
    # Outside ADMIN_ALLOWED_NETWORKS every /admin/ address is a 404 (before CommonMiddleware,
    # whose slash redirect would otherwise show where the admin is).
    "audit.networks.AdminNetworksMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Every view needs a signed-in user unless it is marked @login_not_required.
    "accounts.middleware.LoginRequiredHtmxAwareMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "django_ratelimit.middleware.RatelimitMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "accounts.context_processors.signup",
            ],
        },
    },
]

# --- database ---------------------------------------------------------------------------

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets readers and one writer work at once; IMMEDIATE takes the write lock at
    # BEGIN so the busy timeout applies instead of failing with "database is locked".
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )

elif DATABASES["default"]["ENGINE"].startswith("django.db.backends.postgresql"):
    # libpq waits forever for a dead server by default; readiness and requests must not.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("connect_timeout", 5)

# Persistent connections: opening one (and, on SQLite, its PRAGMAs) cost more than a whole
# status poll's queries (docs/PERFORMANCE.md). Checked before reuse, so a restarted server is fine.
# Under ASGI too: the site's sync views run on a fixed pool of threads (config/asgi_site.py) and
# the rest on asgiref's and the event loop's long-lived ones, never on a thread per request,
# whose connection would outlive it (why Django's docs advise against them under ASGI).
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=600))
DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- cache ------------------------------------------------------------------------------

REDIS_URL = env.str("REDIS_URL", default="")
# gunicorn processes (config/gunicorn.conf.py reads the same variable).
WEB_CONCURRENCY = env.int("WEB_CONCURRENCY", default=1)
# Threads per web process for the ordinary pages (config/asgi_site.py), as gthread had; the event
# streams and the waiting /v1/ generations need none.
WEB_THREADS = env.int("WEB_THREADS", default=8)
# How long gunicorn's thread may spend reading one request's body (config/body_deadline.py);
# nginx in front buffers bodies, so this only bites when the app server is reached directly.
WEB_BODY_SECONDS = env.float("WEB_BODY_SECONDS", default=10.0)
# Rendered grid tiles (generator.lib.fragments), kept by what they show: the same key is the
# same HTML in every process, so each keeps its own in memory, with or without Redis.
# A tile is 1-2 kB, a page's run of them 50-90 kB: at most about 20 MB each.
FRAGMENTS_CACHE = {
    "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
    "LOCATION": "fragments",
    "OPTIONS": {"MAX_ENTRIES": 10_000},
}
FRAGMENT_RUNS_CACHE = {
    "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
    "LOCATION": "fragment-runs",
    "OPTIONS": {"MAX_ENTRIES": 250},
}
if REDIS_URL:
    REDIS_CACHE = {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        # Without socket timeouts a dead Redis hangs requests instead of failing them.
        "OPTIONS": {"socket_connect_timeout": 5, "socket_timeout": 5},
    }
    CACHES = {
        "default": REDIS_CACHE,
        "ratelimit": {**REDIS_CACHE, "KEY_PREFIX": "ratelimit"},
        "fragments": FRAGMENTS_CACHE,
        "fragment-runs": FRAGMENT_RUNS_CACHE,
    }
else:
    CACHES = {
        # Shared by the web server and the worker processes on this machine (django-q2
        # keeps its cluster statistics here, so a per-process cache would not do).
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": env.str("CACHE_DIR", default=str(BASE_DIR / "var" / "cache")),
        },
        # Rate-limit counters need atomic increments. In memory they are exact while one web
        # process (with threads) serves everything; generator.checks refuses this cache when
        # WEB_CONCURRENCY asks for several processes without REDIS_URL.
        "ratelimit": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "ratelimit"},
        "fragments": FRAGMENTS_CACHE,
        "fragment-runs": FRAGMENT_RUNS_CACHE,
    }

# --- auth -------------------------------------------------------------------------------

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "generator:create"
LOGOUT_REDIRECT_URL = "login"
# Who may create an account on the sign-up page: open (signed in at once), approval (the account
# waits, inactive, until staff approve it in the admin) or closed (404; staff add people in the
# admin). Without SIGNUP, the older ALLOW_SIGNUP still decides: false is closed, true is open.
allow_signup = env.bool("ALLOW_SIGNUP", default=None)
SIGNUP = env.str("SIGNUP", default={None: "approval", True: "open", False: "closed"}[allow_signup]).lower()
if SIGNUP not in ("open", "approval", "closed"):
    raise ImproperlyConfigured(f"SIGNUP must be open, approval or closed, not {SIGNUP!r}.")

# --- i18n -------------------------------------------------------------------------------

LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("zh-hans", _("Simplified Chinese"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

# --- static and media -------------------------------------------------------------------

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]

# Media is private: there is no MEDIA_URL route; files go out through an owner-checked view.
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(BASE_DIR / "media")))
MEDIA_URL = "/private-media/"


def s3_storage(
    *, bucket: str, endpoint_url: str, region: str, access_key: str, secret_key: str, presigned_seconds: int
) -> dict:
    """django-storages' S3 backend for images and thumbnails: private objects, signed links."""
    from botocore.config import Config

    return {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": bucket,
            "endpoint_url": endpoint_url or None,
            "region_name": region or None,
            # Empty keys: boto3 finds credentials itself (instance role, AWS_* variables).
            "access_key": access_key or None,
            "secret_key": secret_key or None,
            # No ACL header: objects get the bucket's default, which is private.
            "default_acl": None,
            "querystring_auth": True,
            "querystring_expire": presigned_seconds,
            "file_overwrite": False,
            # A stalled bucket must fail a request or a task, not hang it.
            "client_config": Config(
                connect_timeout=5,
                read_timeout=20,
                retries={"max_attempts": 3, "mode": "standard"},
                signature_version="s3v4",
                # S3-compatible servers (MinIO, Ceph, moto) want the bucket in the path.
                s3={"addressing_style": "path" if endpoint_url else "auto"},
            ),
        },
    }


# local: files under MEDIA_ROOT. s3: an S3-compatible bucket (django-storages).
STORAGE = env.str("STORAGE", default="local").lower()
if STORAGE == "s3":
    S3_BUCKET = env.str("S3_BUCKET", default="")
    if not S3_BUCKET:
        raise ImproperlyConfigured("Set the S3_BUCKET environment variable: it is required when STORAGE=s3.")
    S3_ENDPOINT_URL = env.str("S3_ENDPOINT_URL", default="")
    S3_REGION = env.str("S3_REGION", default="")
    default_storage_config = s3_storage(
        bucket=S3_BUCKET,
        endpoint_url=S3_ENDPOINT_URL,
        region=S3_REGION,
        access_key=env.str("S3_ACCESS_KEY_ID", default=""),
        secret_key=env.str("S3_SECRET_ACCESS_KEY", default=""),
        # Lifetime of the signed link an image request is redirected to.
        presigned_seconds=env.int("S3_PRESIGNED_SECONDS", default=300),
    )
    # Image requests are redirected to the bucket: the pages' Content-Security-Policy must
    # let <img> follow them there.
    if S3_ENDPOINT_URL:
        endpoint = urlsplit(S3_ENDPOINT_URL)
        MEDIA_ORIGINS = [f"{endpoint.scheme}://{endpoint.netloc}"]
    else:
        MEDIA_ORIGINS = [f"https://{S3_BUCKET}.s3.amazonaws.com"]
        if S3_REGION:
            MEDIA_ORIGINS.append(f"https://{S3_BUCKET}.s3.{S3_REGION}.amazonaws.com")
elif STORAGE == "local":
    default_storage_config = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
    MEDIA_ORIGINS = []
else:
    raise ImproperlyConfigured(f"STORAGE must be local or s3, not {STORAGE!r}.")

STORAGES = {
    "default": default_storage_config,
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# How the owner-checked image view sends a local file: "django" streams it; "x-accel" leaves
# it to nginx (X-Accel-Redirect to X_ACCEL_PREFIX + the file's name, an `internal` location).
# Files in a bucket always go out as a redirect to a short-lived signed link.
SERVE_MEDIA_WITH = env.str("SERVE_MEDIA_WITH", default="django").lower()
if SERVE_MEDIA_WITH not in ("django", "x-accel"):
    raise ImproperlyConfigured(f"SERVE_MEDIA_WITH must be django or x-accel, not {SERVE_MEDIA_WITH!r}.")
X_ACCEL_PREFIX = env.str("X_ACCEL_PREFIX", default="/protected-media/")

# Private images and their folders: not readable by other local users. FileSystemStorage
# applies both to every file it saves, the worker's ContentFile saves included, whatever the
# process umask (make run, the Procfile and the image also set umask 027 for the database).
FILE_UPLOAD_PERMISSIONS = 0o640
FILE_UPLOAD_DIRECTORY_PERMISSIONS = 0o750

# --- limits ---------------------------------------------------------------------------

# Tasks one person may have waiting (pending or retrying); past it a new one is refused (429).
# How many of them run at once is the scheduler's fair share, not a cap (docs/SCHEDULING.md).
MAX_QUEUED_TASKS_PER_USER = env.int("MAX_QUEUED_TASKS_PER_USER", default=20)
GENERATE_RATE = env.str("GENERATE_RATE", default="10/m")
API_RATE = env.str("API_RATE", default="600/m")
# Sign-in attempts (the site's page and the admin's) per client address, per username from one
# address, and per username from everywhere (accounts.limits says why three).
LOGIN_RATE_PER_IP = env.str("LOGIN_RATE_PER_IP", default="20/m")
LOGIN_RATE_PER_USERNAME_AND_IP = env.str("LOGIN_RATE_PER_USERNAME_AND_IP", default="5/m")
LOGIN_RATE_PER_USERNAME = env.str("LOGIN_RATE_PER_USERNAME", default="20/m")
SIGNUP_RATE_PER_IP = env.str("SIGNUP_RATE_PER_IP", default="10/h")

# Quotas per person (usage app; README "Quotas and spend"): the defaults for everyone, over
# which the admin's Quota rows for a group or a person win. Empty = unlimited, 0 = none allowed.
# Days start at local midnight and months on the 1st, in TIME_ZONE.
QUOTA_IMAGES_PER_DAY = usage_config.image_limit("QUOTA_IMAGES_PER_DAY", env.str("QUOTA_IMAGES_PER_DAY", default=""))
QUOTA_IMAGES_PER_MONTH = usage_config.image_limit(
    "QUOTA_IMAGES_PER_MONTH", env.str("QUOTA_IMAGES_PER_MONTH", default="")
)
QUOTA_SPEND_PER_MONTH = usage_config.spend_limit("QUOTA_SPEND_PER_MONTH", env.str("QUOTA_SPEND_PER_MONTH", default=""))
# Spend is counted and capped in one currency; prices in others are converted at these rates
# (one unit of CNY is worth 0.14 USD: USAGE_EXCHANGE_RATES=CNY=0.14).
USAGE_CURRENCY = usage_config.currency("USAGE_CURRENCY", env.str("USAGE_CURRENCY", default="USD"))
USAGE_EXCHANGE_RATES = usage_config.exchange_rates("USAGE_EXCHANGE_RATES", env.str("USAGE_EXCHANGE_RATES", default=""))

# Reverse proxies whose X-Forwarded-For is believed (IPs or CIDR networks). Empty: nobody's, and
# the client is REMOTE_ADDR. Every per-address limit keys on accounts.addresses.client_address.
TRUSTED_PROXIES = env.list("TRUSTED_PROXIES", default=[])
RATELIMIT_IP_META_KEY = "accounts.addresses.client_address"
RATELIMIT_USE_CACHE = "ratelimit"
# Checked by generator.checks instead: Django's own Redis cache is fine (W001), and an
# in-memory cache is exact for one web process (E003).
SILENCED_SYSTEM_CHECKS = ["django_ratelimit.W001", "django_ratelimit.E003"]

# --- security ---------------------------------------------------------------------------

# Only the app's own scripts, styles and images; no inline code anywhere.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:", *MEDIA_ORIGINS],
        "connect-src": ["'self'"],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
# Sessions read from the cache (written through to the database): one query less per request.
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
CSRF_FAILURE_VIEW = "generator.views.errors.csrf_failure"
# Whether people reach the site over https (TLS at a proxy): the redirect, Secure cookies and
# HSTS. Production (DEBUG=false) assumes so; `make run` serves plain http on loopback and says
# HTTPS=false, because a redirect to https://localhost fails and some browsers drop Secure
# cookies on http://localhost.
HTTPS = env.bool("HTTPS", default=not DEBUG)
if HTTPS:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31_536_000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
    SECURE_REFERRER_POLICY = "same-origin"

# --- generation -------------------------------------------------------------------------

OFFLINE_PROVIDER = env.bool("OFFLINE_PROVIDER", default=True)
OFFLINE_DELAY_SECONDS = env.float("OFFLINE_DELAY_SECONDS", default=0.0)
# Attempts per task for transient provider errors, with exponential backoff between them.
PROVIDER_MAX_ATTEMPTS = env.int("PROVIDER_MAX_ATTEMPTS", default=3)
PROVIDER_RETRY_BACKOFF_SECONDS = env.float("PROVIDER_RETRY_BACKOFF_SECONDS", default=2.0)
THUMBNAIL_SIZE = env.int("THUMBNAIL_SIZE", default=384)
# Seconds one task may run in a worker before django-q2 stops it.
TASK_TIMEOUT = env.int("TASK_TIMEOUT", default=720)
# Seconds past TASK_TIMEOUT before the sweeper treats a generating task as lost (django-q2
# kills a worker 3 s after its timeout, so keep this well above 3).
RECOVERY_GRACE_SECONDS = env.int("RECOVERY_GRACE_SECONDS", default=60)
# Seconds a task may wait on the queue before the sweeper re-enqueues it (the Redis broker
# loses messages when a worker crashes); a duplicate delivery is harmless.
REQUEUE_PENDING_AFTER_SECONDS = env.int("REQUEUE_PENDING_AFTER_SECONDS", default=600)
# Days after which finished tasks (with their images and files) are deleted by a daily
# schedule; 0 keeps everything.
RETENTION_DAYS = env.int("RETENTION_DAYS", default=0)
# Result images fetched from provider links: size cap and total time for one download.
MAX_IMAGE_BYTES = env.int("MAX_IMAGE_BYTES", default=25 * 1024 * 1024)
DOWNLOAD_DEADLINE_SECONDS = env.float("DOWNLOAD_DEADLINE_SECONDS", default=60.0)


def provider_env(prefix: str, **spec: tuple[type, object]) -> dict:
    """One provider's variables (PREFIX + KEY), plus which of them the environment sets."""
    values: dict = {
        key: env.get_value(prefix + key, cast=cast, default=default) for key, (cast, default) in spec.items()
    }
    values["ENV_PREFIX"] = prefix
    values["SET"] = sorted(key for key in spec if prefix + key in os.environ)
    return values


def openai_compatible_env(prefix: str, base_url: str, **extra: tuple[type, object]) -> dict:
    return provider_env(
        prefix,
        API_KEY=(str, ""),
        BASE_URL=(str, base_url),
        MODELS=(list, []),
        SELF_HOSTED=(bool, False),
        TIMEOUT_SECONDS=(float, None),
        FLAVOR=(str, ""),
        **extra,
    )


# A provider is offered once its required variables are set (see each provider module);
# `manage.py check` names what is missing from a half-configured one. Each provider module
# owns its default MODELS and TIMEOUT_SECONDS (docs/PROVIDERS.md): unset, those apply.
PROVIDER_CONFIG = {
    "volcengine": provider_env(
        "VOLCENGINE_",
        ACCESS_KEY=(str, ""),
        SECRET_KEY=(str, ""),
        BASE_URL=(str, "https://visual.volcengineapi.com"),
        REGION=(str, "cn-north-1"),
        SERVICE=(str, "cv"),
        MODELS=(list, []),
        SELF_HOSTED=(bool, False),
        TIMEOUT_SECONDS=(float, None),
        POLL_INTERVAL_SECONDS=(float, 1.0),
        POLL_DEADLINE_SECONDS=(float, 180.0),
    ),
    "openai": openai_compatible_env(
        "OPENAI_",
        "https://api.openai.com/v1",
        ORGANIZATION=(str, ""),
        PROJECT=(str, ""),
        QUALITY=(str, ""),
        BACKGROUND=(str, ""),
    ),
    "ark": openai_compatible_env("ARK_", "https://ark.cn-beijing.volces.com/api/v3"),
    "siliconflow": openai_compatible_env("SILICONFLOW_", "https://api.siliconflow.cn/v1"),
    "dashscope": provider_env(
        "DASHSCOPE_",
        API_KEY=(str, ""),
        BASE_URL=(str, ""),  # empty: the documented endpoint of DASHSCOPE_REGION
        REGION=(str, "cn-beijing"),
        WORKSPACE=(str, ""),
        MODELS=(list, []),
        SELF_HOSTED=(bool, False),
        TIMEOUT_SECONDS=(float, None),
        POLL_INTERVAL_SECONDS=(float, 1.0),
        POLL_DEADLINE_SECONDS=(float, 240.0),
        PROMPT_EXTEND=(bool, False),
    ),
    "automatic1111": provider_env(
        "AUTOMATIC1111_",
        BASE_URL=(str, ""),
        USERNAME=(str, ""),
        PASSWORD=(str, ""),
        MODELS=(list, []),
        SAMPLER=(str, "Euler a"),
        STEPS=(int, 25),
        TIMEOUT_SECONDS=(float, None),
        # How often the worker asks the WebUI for progress while a call runs (0: never), and
        # whether it also fetches the picture so far to show in the task card.
        PROGRESS_SECONDS=(float, 1.0),
        LIVE_PREVIEW=(bool, True),
    ),
}

# --- the OpenAI-compatible API (/v1/, gateway/) -------------------------------------------

# How long POST /v1/images/generations waits for its task before answering 503 (the task goes
# on and lands in the gallery), and how long the links of a `url` answer work.
OPENAI_COMPAT_WAIT_SECONDS = env.float("OPENAI_COMPAT_WAIT_SECONDS", default=300.0)
OPENAI_COMPAT_URL_SECONDS = env.int("OPENAI_COMPAT_URL_SECONDS", default=3600)
# Names clients may use for an offered model: "dall-e-3=openai:gpt-image-2,dall-e-2=offline:sketch-v1".
OPENAI_COMPAT_MODEL_ALIASES: dict[str, str] = env.dict("OPENAI_COMPAT_MODEL_ALIASES", default={})
# The model of a request that names none (an id or alias); empty: the first offered model.
OPENAI_COMPAT_DEFAULT_MODEL = env.str("OPENAI_COMPAT_DEFAULT_MODEL", default="")

# --- sharing (sharing/): Explore, likes and share links ---------------------------------

# off: nothing is shown to anyone else; team: Explore for signed-in people; public: Explore
# and share links that work without an account.
SHARING = env.str("SHARING", default="team").strip().lower()
if SHARING not in ("off", "team", "public"):
    raise ImproperlyConfigured(f"SHARING must be off, team or public; not {SHARING!r}.")
# Requests per address to the pages of share links (anonymous), django-ratelimit's syntax.
SHARE_LINK_RATE = env.str("SHARE_LINK_RATE", default="60/m")
# How long browsers and proxies may keep a share page or its files: a revoked link must stop
# working soon everywhere.
SHARE_LINK_CACHE_SECONDS = env.int("SHARE_LINK_CACHE_SECONDS", default=60)

# --- prompt assistance (prompts/): the LLM prompt helper --------------------------------

# Any OpenAI-compatible chat-completions service: DashScope's compatible mode (Qwen),
# SiliconFlow, Ark, OpenAI, a local Ollama or vLLM. Empty base URL or model: the helper is off.
PROMPT_LLM_BASE_URL = env.str("PROMPT_LLM_BASE_URL", default="").strip().rstrip("/")
PROMPT_LLM_API_KEY = env.str("PROMPT_LLM_API_KEY", default="")
PROMPT_LLM_MODEL = env.str("PROMPT_LLM_MODEL", default="").strip()
PROMPT_LLM_TIMEOUT_SECONDS = env.float("PROMPT_LLM_TIMEOUT_SECONDS", default=15.0)
# Suggestions asked per person, django-ratelimit's syntax (each costs an LLM call).
PROMPT_LLM_RATE = env.str("PROMPT_LLM_RATE", default="10/m")

# --- backups and the audit log (audit/, generator/ops/backups) -------------------------

# Days an audit entry is kept (the daily cleanup removes older ones); 0 keeps them forever.
AUDIT_RETENTION_DAYS = env.int("AUDIT_RETENTION_DAYS", default=365)
# Where `manage.py backup` writes its dated archives, how many it keeps (--keep's default), and
# how often the worker makes one (hourly, daily or weekly; a cron expression needs croniter;
# empty: no scheduled backups).
BACKUP_DIR = env.path("BACKUP_DIR", default=str(BASE_DIR / "var" / "backups"))
BACKUP_KEEP = env.int("BACKUP_KEEP", default=7)
BACKUP_SCHEDULE = env.str("BACKUP_SCHEDULE", default="").strip()
# Networks the admin answers from (comma-separated CIDRs, as trusted-proxy keying sees the
# client); empty: everywhere. Elsewhere /admin/ is a plain 404.
ADMIN_ALLOWED_NETWORKS = env.list("ADMIN_ALLOWED_NETWORKS", default=[])

# --- scheduling (generator.scheduler, docs/SCHEDULING.md) ------------------------------

# Per provider, from <PREFIX>CONCURRENCY (calls in flight at once, vendor jobs included),
# <PREFIX>RATE (generations started per window, django-ratelimit's syntax: 10/m, 5/10s; empty
# is no limit) and <PREFIX>FALLBACK (provider:model a task moves to, once, when this provider
# used up its attempts or its account's quota). Enforced across every worker and machine.
DEFAULT_PROVIDER_CONCURRENCY = {"automatic1111": 1, "dashscope": 2}


def provider_limits(name: str, prefix: str) -> dict:
    return {
        "CONCURRENCY": env.int(prefix + "CONCURRENCY", default=DEFAULT_PROVIDER_CONCURRENCY.get(name, 4)),
        "RATE": env.str(prefix + "RATE", default=""),
        "FALLBACK": env.str(prefix + "FALLBACK", default=""),
    }


PROVIDER_LIMITS = {
    "offline": provider_limits("offline", "OFFLINE_"),
    **{name: provider_limits(name, config["ENV_PREFIX"]) for name, config in PROVIDER_CONFIG.items()},
}
# Backoff after a transient failure: PROVIDER_RETRY_BACKOFF_SECONDS doubled per attempt, with
# jitter, at least the provider's Retry-After, at most this.
PROVIDER_RETRY_MAX_SECONDS = env.float("PROVIDER_RETRY_MAX_SECONDS", default=300.0)
# A worker holding a task beats every HEARTBEAT_SECONDS; a hold whose beat is older than
# HEARTBEAT_TIMEOUT_SECONDS belongs to a dead worker and is taken back.
HEARTBEAT_SECONDS = env.float("HEARTBEAT_SECONDS", default=5.0)
HEARTBEAT_TIMEOUT_SECONDS = env.float("HEARTBEAT_TIMEOUT_SECONDS", default=30.0)
# How often each worker cluster's dispatcher looks for tasks that became due.
DISPATCH_INTERVAL_SECONDS = env.float("DISPATCH_INTERVAL_SECONDS", default=0.25)

# --- django-q2 --------------------------------------------------------------------------

Q_WORKERS = env.int("Q_WORKERS", default=2)
Q_CLUSTER = {
    "name": "atelier",
    "workers": Q_WORKERS,
    # A small local queue keeps the "retry > timeout" bound tight (see docs/pitfalls):
    # retry must exceed timeout * (ceil((queue_limit + 1) / workers) + 1).
    "queue_limit": Q_WORKERS,
    "bulk": 1,
    "timeout": TASK_TIMEOUT,
    "retry": TASK_TIMEOUT * 3 + 60,
    # Our Task row drives retries; django-q2 must never re-run a paid provider call itself.
    "max_attempts": 1,
    "ack_failures": True,
    "save_limit": 250,
    "catch_up": False,
    "recycle": 200,
    "max_rss": 300_000,
    # The ORM broker's look at its table while it is empty: what a task waits for a worker on
    # the embedded default (submit -> claim p50 17 ms at 0.02 s, 52 ms at 0.05 s, 95 ms at
    # 0.2 s), for about 1 % of a core more per idle cluster than 0.05 s (docs/PERFORMANCE.md).
    "poll": env.float("Q_POLL_SECONDS", default=0.02),
    "label": _("Queue"),  # the admin section's name
}
if REDIS_URL:
    # Socket timeouts for the broker too (django-q2 passes the URL to redis.from_url);
    # they stay above the broker's own 1 s blocking pop.
    separator = "&" if "?" in REDIS_URL else "?"
    Q_CLUSTER["redis"] = f"{REDIS_URL}{separator}socket_connect_timeout=5&socket_timeout=10"
else:
    Q_CLUSTER["orm"] = "default"

# --- health -----------------------------------------------------------------------------

# /readyz answers 200 or 503 to anyone; its per-check details only with this bearer token.
READYZ_TOKEN = env.str("READYZ_TOKEN", default="")
READYZ_RATE = env.str("READYZ_RATE", default="60/m")  # per client address
# The storage probe writes and deletes a file (billed requests on a bucket): its answer is kept.
READYZ_STORAGE_CACHE_SECONDS = env.int("READYZ_STORAGE_CACHE_SECONDS", default=30)
# /metrics (generator/ops/metrics.py) is computed from the database at most once this often,
# whoever asks; 0 computes it on every scrape.
METRICS_CACHE_SECONDS = env.int("METRICS_CACHE_SECONDS", default=5)

# --- logging ----------------------------------------------------------------------------

# Prompts are people's words: they reach the logs only when the operator asks for it.
LOG_PROMPTS = env.bool("LOG_PROMPTS", default=False)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {
        "generator": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
        "accounts": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
        "gateway": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
        "django.request": {"handlers": ["console"], "level": "ERROR"},
    },
}
