"""Refund Desk settings.

Every difference between deployments is read from the environment; there are no
production-only code paths. With nothing set, the project runs on a SQLite file and the
django-q2 ORM broker, so a newcomer's first run needs nothing installed.
"""

import os
import warnings
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def redis_url_with_timeouts(url: str, *, connect: float, read: float) -> str:
    """`url` with redis-py's connect and read timeouts as query options, unless it sets its own."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query.setdefault("socket_connect_timeout", str(connect))
    query.setdefault("socket_timeout", str(read))
    return urlunsplit(parts._replace(query=urlencode(query)))


# The repository's key is public: with DEBUG off the start is refused while it (or any short
# key) is in use (`config/deploy.py`), because django-q2 signs its pickled tasks with it and
# whoever can write to the queue and knows the key can run code.
INSECURE_SECRET_KEY = "dev-only-insecure-key-change-me-in-every-deployment"  # noqa: S105 (public on purpose)
SECRET_KEY = env_str("SECRET_KEY") or INSECURE_SECRET_KEY
# Off unless the environment says so (`make demo` does): a deploy that forgets it fails
# closed, refusing to start until its key and backends are set (`config/deploy.py`).
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    # Its app config puts an index's operator class outside the expression's parentheses
    # (the staff search's trigram index); its lookups and operations work on PostgreSQL only.
    "django.contrib.postgres",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "csp",
    # The project's own app: the background-work kit (parked sweeper rows, worker stalls),
    # /health/ and check_workers. Before django_q: its `qcluster` command replaces
    # django-q2's (the first app with a command of that name wins), so the deploy command
    # runs the self-healing cluster.
    "config",
    "django_q",
    "import_export",
    # The one audit log (old → new for policies, settings, roles, channels and keys) and the
    # money-limit raises waiting for a second admin.
    "auditlog",
    "config.audit",
    "orders",
    "refunds",
    # The simulated payment gateway's books (its own tables, not the product's): the demo's
    # and the tests' stand-in for the provider.
    "refunds.gateways.simulated",
    "risk",
    "notifications",
    # Staff accounts (issue 18): sign-in lockout, two-factor authentication, sessions.
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "axes",
    "accounts",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # The Content-Security-Policy header (django-csp), on every page: see CONTENT_SECURITY_POLICY.
    "csp.middleware.CSPMiddleware",
    # gunicorn serves the static files itself (the admin's, Swagger UI's): nothing else to run.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # request.user.is_verified(): the session's second factor (one lookup when it has one).
    "django_otp.middleware.OTPMiddleware",
    "accounts.middleware.SessionActivityMiddleware",
    "accounts.middleware.TwoFactorMiddleware",
    # Names the logged-in user as the actor of every audit entry written in an admin request.
    "config.audit.middleware.AdminAuditMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: turns a locked-out sign-in into its 429 page.
    "axes.middleware.AxesMiddleware",
]

# django-axes first: it refuses a locked-out sign-in before the password is even checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "config.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "config" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "config.wsgi.application"

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        conn_max_age=env_int("DB_CONN_MAX_AGE", 0),
        # A kept connection the server dropped (a restart, a failover) is replaced at the
        # next request instead of failing it: one `SELECT 1` per request, only on a kept
        # connection.
        conn_health_checks=env_bool("DB_CONN_HEALTH_CHECKS", True),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and env_bool("DB_SERVER_SIDE_BINDING", True):
    # Values travel apart from the SQL, and a statement run 5 times on a connection becomes a
    # prepared statement that PostgreSQL no longer parses and plans each time: the intake and
    # the API's reads repeat the same few statements all day. Behind a pooler that cannot
    # keep prepared statements (PgBouncer < 1.21 in transaction mode), set it to 0.
    DATABASES["default"].setdefault("OPTIONS", {})["server_side_binding"] = True
    DATABASES["default"]["OPTIONS"]["prepare_threshold"] = env_int("DB_PREPARE_THRESHOLD", 5)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several threads (runserver, the in-process q2 cluster) share the file: wait for the
    # write lock instead of failing with "database is locked".
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 30
    DATABASES["default"]["OPTIONS"]["transaction_mode"] = "IMMEDIATE"

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_str("REDIS_URL", "")

if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# django-q2. `timeout` stays below `retry` so a task still running is never delivered a
# second time, and `max_attempts` is finite so a poisoned task stops coming back. Our tasks
# are idempotent anyway (they claim rows with conditional updates).
Q_CLUSTER = {
    "name": env_str("Q_CLUSTER_NAME", "refund-desk"),
    "workers": env_int("Q_WORKERS", 2),
    "timeout": env_int("Q_TIMEOUT", 60),
    "retry": env_int("Q_RETRY", 90),
    "max_attempts": env_int("Q_MAX_ATTEMPTS", 3),
    "save_limit": 1000,
    "queue_limit": 100,
    "label": "Django Q2",
    "catch_up": False,
    "poll": 0.1,
}
# Background work is "stalled" when tasks have waited longer than this while none finished
# for as long (`/health/` answers 503, `check_workers` exits 1, the administrators get one
# inbox alert). The sweepers run every minute, so a moving cluster never idles this long.
WORKERS_STALL_SECONDS = env_int("WORKERS_STALL_SECONDS", 180)
# The queue. The ORM broker (the default) keeps it in the database, so the intake writes a
# request's evaluation task in the same statement as the request: the task exists exactly
# when the request does, with no second write and no window between commit and enqueue.
# Redis (Q_BROKER=redis, with REDIS_URL) is a separate queue, pushed to after commit. A push
# that fails is logged and its row left to the sweepers (`config/q2.py`), so the request
# answers what it did; the timeouts keep a Redis that is down or hung from holding the
# request meanwhile (redis-py has none by default: a hung server would hang it for good).
# The read timeout stays above the 1 s a cluster blocks waiting for the next task.
Q_BROKER = env_str("Q_BROKER", "orm")
if Q_BROKER == "redis" and REDIS_URL:
    Q_CLUSTER["redis"] = redis_url_with_timeouts(
        REDIS_URL,
        connect=float(env_str("Q_REDIS_CONNECT_TIMEOUT", "1")),
        read=float(env_str("Q_REDIS_TIMEOUT", "2")),
    )
elif Q_BROKER == "orm":
    Q_CLUSTER["orm"] = "default"
else:
    raise ImproperlyConfigured(f"Q_BROKER must be 'orm', or 'redis' with REDIS_URL set; it is {Q_BROKER!r}.")
# A row a sweeper failed on this many times in a row is parked (left out of later runs, shown
# in the admin under "Stuck work") instead of blocking the rows behind it.
SWEEP_PARK_AFTER = env_int("SWEEP_PARK_AFTER", 3)
# Tests and scripts may run tasks inline instead of through a cluster.
if env_bool("Q_SYNC", False):
    Q_CLUSTER["sync"] = True

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("zh-hans", _("Simplified Chinese"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env_str("TIME_ZONE", "Asia/Shanghai")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# WhiteNoise serves the apps' static files where they lie, so a deployment works with or
# without `collectstatic`; files collected into STATIC_ROOT are served from there.
WHITENOISE_USE_FINDERS = True
# ... so an uncollected STATIC_ROOT is expected, not worth a warning at every start.
warnings.filterwarnings("ignore", message=r"No directory at: .*staticfiles")
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(BASE_DIR / "media")))
# Where uploaded inspection photos go: Django's default storage. S3 and the like are a setting
# (`MEDIA_STORAGE_BACKEND=storages.backends.s3.S3Storage` with django-storages installed and
# its AWS_* variables), not code: the photos are read back through the storage, never a path.
STORAGES = {
    "default": {"BACKEND": env_str("MEDIA_STORAGE_BACKEND", "django.core.files.storage.FileSystemStorage")},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

LOGIN_URL = "admin:login"

# HTTPS. With DEBUG off every one of these is on unless the environment turns it off
# (`docs/deploy.md`), so `check --deploy` has nothing to say about a default deploy. The
# liveness check stays answerable over plain HTTP: load balancers and uptime monitors probe it
# on the private side of the TLS terminator, and a redirect there would read as "down".
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^health/$"]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", not DEBUG)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
# Behind a proxy that terminates TLS and says so in X-Forwarded-Proto (and strips what the
# client sent in that header): without it every request looks like plain HTTP and is redirected.
if env_bool("SECURE_PROXY_SSL_HEADER", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Content-Security-Policy (django-csp) for every page: the admin and Swagger UI load scripts
# and styles from our own static files only (no inline script, no inline style, no eval), so
# an injected <script> or a handler attribute does not run. Swagger UI's icons are data: URIs.
# The inspection photo view sends a stricter policy of its own.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}

# Uploads and imports: every file is refused above its cap before it is parsed, and an
# import is counted row by row while it is read, so a small file that unpacks huge (an XLSX is
# a zip) stops at the cap instead of filling a worker's memory.
PHOTO_MAX_BYTES = env_int("PHOTO_MAX_BYTES", 10 * 1024 * 1024)
# A picture is decoded to check it and strip its metadata: bound the pixels, not only the bytes
# (a few kilobytes of PNG can claim 50,000 x 50,000 pixels).
PHOTO_MAX_PIXELS = env_int("PHOTO_MAX_PIXELS", 40_000_000)
IMPORT_MAX_BYTES = env_int("IMPORT_MAX_BYTES", 5 * 1024 * 1024)
IMPORT_MAX_ROWS = env_int("IMPORT_MAX_ROWS", 10_000)
# What an XLSX may unpack to (the sum of its parts' sizes), checked before a byte is unpacked.
IMPORT_MAX_UNPACKED_BYTES = env_int("IMPORT_MAX_UNPACKED_BYTES", 50 * 1024 * 1024)
# Django keeps an upload up to this in memory, a bigger one in a temporary file, of which our
# handler keeps at most the largest cap above: the rest is counted, so the file is refused with
# its real size, and never stored.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
FILE_UPLOAD_HANDLERS = [
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "config.uploads.CappedUploadHandler",
]

# Staff sessions (accounts/sessions.py): in the database with who, from where and when, so
# each person can see and end theirs. A session unused for SESSION_IDLE_MINUTES ends (Django
# counts SESSION_COOKIE_AGE from the session's last save); an active one is saved at most once
# per SESSION_ACTIVITY_SECONDS, which is also how precise "last seen" and the timeout are.
# Expired rows are deleted by the hourly schedule `accounts.tasks.prune_sessions`.
SESSION_ENGINE = "accounts.sessions"
SESSION_COOKIE_AGE = env_int("SESSION_IDLE_MINUTES", 8 * 60) * 60
SESSION_ACTIVITY_SECONDS = env_int("SESSION_ACTIVITY_SECONDS", 60)

# Sign-in lockout (django-axes): AXES_FAILURE_LIMIT failed sign-ins for one user name, or
# from one address, lock sign-in for that user name or address (even with the right
# password) for AXES_COOLOFF_MINUTES; each failure while locked starts the wait again. An
# administrator unlocks sooner under Axes → Access attempts (accounts/admin.py). Behind a proxy set
# AXES_CLIENT_IP_CALLABLE (or install django-ipware), or every client is the proxy's address.
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("AXES_COOLOFF_MINUTES", 30))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "accounts.views.locked_out"
AXES_HTTP_RESPONSE_CODE = 429
AXES_ENABLE_ADMIN = False  # accounts/admin.py has the administrators' screen, with "unlock"
AXES_DISABLE_ACCESS_LOG = True  # who is signed in is the sessions table; successes need no second log
AXES_VERBOSE = False

# Two-factor authentication (django-otp, TOTP + one-time recovery codes): required for the
# roles of refunds.roles.TWO_FACTOR_ROLES and for superusers, optional for the others.
OTP_TOTP_ISSUER = "Refund Desk"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["orders.api.authentication.ChannelKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["orders.api.authentication.IsChannel"],
    # JSON only, and nested at most orders.api.parsers.MAX_JSON_DEPTH levels (deeper is a 400).
    "DEFAULT_PARSER_CLASSES": ["orders.api.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "COERCE_DECIMAL_TO_STRING": True,
    "UNAUTHENTICATED_USER": None,
    # Per channel: a burst limit and a sustained one (orders.api.throttling, rates below).
    "DEFAULT_THROTTLE_CLASSES": [
        "orders.api.throttling.ChannelBurstThrottle",
        "orders.api.throttling.ChannelSustainedThrottle",
    ],
    # The client's address for the per-IP limit on failed authentication is REMOTE_ADDR (0),
    # or with N proxies in front that each append to X-Forwarded-For, the Nth address from
    # its end. Never trust X-Forwarded-For with no proxy: a client would pick its own address.
    "NUM_PROXIES": env_int("API_NUM_PROXIES", 0),
}

# The channel API's limits, "N/s", "N/min", "N/hour" or "N/day" each (fixed windows counted
# in the cache: Redis when REDIS_URL is set, shared by every worker; without it each process
# counts on its own, so N workers let through up to N times as much). Over a limit the API
# answers 429 with Retry-After. An empty value turns that limit off.
API_THROTTLE_RATES = {
    # Requests of one channel (all its keys together).
    "channel_burst": env_str("API_THROTTLE_CHANNEL_BURST", "50/s") or None,
    "channel_sustained": env_str("API_THROTTLE_CHANNEL_SUSTAINED", "1500/min") or None,
    # Failed authentications (a wrong, expired or malformed channel key, a bad carrier
    # signature) from one IP address; past it every request from that address that brings
    # credentials answers 429 until the window ends. A well-signed event refused only for its
    # old timestamp is not counted: it guesses nothing, and a carrier's backlog must not lock
    # out its own address.
    "failed_auth": env_str("API_THROTTLE_FAILED_AUTH", "20/min") or None,
}
# When a channel gets a new key, its other key expires this many days later.
CHANNEL_KEY_ROTATION_DAYS = env_int("CHANNEL_KEY_ROTATION_DAYS", 7)
# A carrier's tracking event signs its X-Timestamp; one further than this from our clock
# (older or newer) is refused, so a captured request can't be replayed later.
CARRIER_SIGNATURE_TOLERANCE_SECONDS = env_int("CARRIER_SIGNATURE_TOLERANCE_SECONDS", 300)

SPECTACULAR_SETTINGS = {
    "TITLE": "Refund Desk channel API",
    "DESCRIPTION": (
        "Sales channels and carriers talk to Refund Desk over this API.\n\n"
        "**Limits.** Each channel may send at most {channel_burst} and {channel_sustained} requests (all its "
        "keys together; fixed windows). Each IP address may fail to authenticate (a wrong or expired key, "
        "a bad carrier signature) at most {failed_auth} times; after that every request from it with "
        "credentials is refused until the window ends. Over a limit the answer is 429 with a `Retry-After` "
        "header (seconds) and a `detail` sentence, and nothing is done.\n\n"
        "**Keys.** A channel can hold two keys at once, so it can switch to a new key without a gap; the old "
        "one then expires (`CHANNEL_KEY_ROTATION_DAYS` later, {rotation_days} days). An expired key answers 401.\n\n"
        "**Carriers** sign `<X-Timestamp>.<raw body>` (HMAC-SHA256, hex in `X-Signature`); a timestamp more "
        "than {tolerance} seconds from our clock, older or newer, answers 401."
    ).format(
        **{k: v or "unlimited" for k, v in API_THROTTLE_RATES.items()},
        rotation_days=CHANNEL_KEY_ROTATION_DAYS,
        tolerance=CARRIER_SIGNATURE_TOLERANCE_SECONDS,
    ),
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "orders.api.schema.add_throttle_responses",
    ],
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI's files come from drf-spectacular-sidecar, served with our static files,
    # not from a CDN: /api/docs/ works where the browser or server has no internet.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# The payment gateway adapter, chosen like Django's email backends. The simulated gateway
# keeps its own ledger in the database and can be told to fail or time out. It is the
# default only with DEBUG on: with DEBUG off the backend must be named (`config/deploy.py`),
# or a deploy that forgot it would mark refunds paid while no money moves.
PAYMENT_GATEWAY = {
    "BACKEND": env_str("PAYMENT_GATEWAY_BACKEND", "refunds.gateways.simulated.SimulatedGateway" if DEBUG else ""),
    "TIMEOUT_SECONDS": env_int("PAYMENT_GATEWAY_TIMEOUT", 10),
}

# Money and policy knobs.
REFUND_DESK = {
    "DEFAULT_CURRENCY": "CNY",
    "RETURN_ADDRESS": env_str("RETURN_ADDRESS", "Refund Desk Returns, 88 Warehouse Road, Hangzhou 310000, CN"),
    # Payouts above this need a second, different finance approver.
    "PAYOUT_FOUR_EYES_ABOVE": env_str("PAYOUT_FOUR_EYES_ABOVE", "1000.00"),
    # A request still `submitted` this long after intake (its evaluation task died or was
    # never queued: the broker was down) is evaluated by the sweeper.
    "SUBMITTED_STALE_SECONDS": env_int("SUBMITTED_STALE_SECONDS", 60),
    # A payout approved and not taken (its task was lost) this long is executed by the
    # sweeper; one left in `processing` this long is sent again with the same idempotency key
    # (the gateway answers the first result again).
    "PAYOUT_STALE_SECONDS": env_int("PAYOUT_STALE_SECONDS", 120),
    # What refund evaluation asks of risk (refunds/assessment.py): a score and the watch list.
    "RISK_ASSESSOR": "risk.services.ASSESSOR",
    # A payout whose outcome is unknown (the gateway timed out) is asked about this long after
    # the call, then with a doubling back-off up to the maximum; after ALERT_AFTER answers
    # that still say nothing, finance is alerted (once).
    "PAYOUT_STATUS_CHECK_FIRST_SECONDS": env_int("PAYOUT_STATUS_CHECK_FIRST_SECONDS", 30),
    "PAYOUT_STATUS_CHECK_MAX_SECONDS": env_int("PAYOUT_STATUS_CHECK_MAX_SECONDS", 3600),
    "PAYOUT_STATUS_ALERT_AFTER": env_int("PAYOUT_STATUS_ALERT_AFTER", 5),
    "COUPON_VALID_DAYS": env_int("COUPON_VALID_DAYS", 90),
    # awaiting_customer with no answer for this long goes back to review.
    "AWAITING_CUSTOMER_TIMEOUT_HOURS": env_int("AWAITING_CUSTOMER_TIMEOUT_HOURS", 72),
}

# Notifications: the SMS backend is chosen like Django's e-mail backends; e-mail goes through
# EMAIL_BACKEND. Back-off doubles from BACKOFF_SECONDS per attempt; after MAX_ATTEMPTS a
# message is `dead` and waits for a person in the admin. A row left in `sending` longer than
# STUCK_SENDING_SECONDS (a worker died) is sent again with the same idempotency key, so keep
# it well above SMS_TIMEOUT_SECONDS. The console backends (which mask phones and e-mail
# addresses) are the defaults only with DEBUG on; with DEBUG off both must be named, like the gateway.
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "notifications.backends.email.ConsoleBackend" if DEBUG else "")
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Refund Desk <refunds@localhost>")
NOTIFICATIONS = {
    "SMS_BACKEND": env_str("NOTIFY_SMS_BACKEND", "notifications.backends.sms.ConsoleBackend" if DEBUG else ""),
    "SMS_API_URL": env_str("NOTIFY_SMS_API_URL", "https://api.twilio.com"),
    "SMS_ACCOUNT_SID": env_str("NOTIFY_SMS_ACCOUNT_SID", ""),
    "SMS_AUTH_TOKEN": env_str("NOTIFY_SMS_AUTH_TOKEN", ""),
    "SMS_FROM": env_str("NOTIFY_SMS_FROM", ""),
    "SMS_TIMEOUT_SECONDS": float(env_str("NOTIFY_SMS_TIMEOUT", "10")),
    "PHONE_REGION": env_str("NOTIFY_PHONE_REGION", "CN"),
    "CUSTOMER_CHANNELS": env_list("NOTIFY_CUSTOMER_CHANNELS", "sms,email"),
    "STAFF_LANGUAGE": env_str("NOTIFY_STAFF_LANGUAGE", "en"),
    "MAX_ATTEMPTS": env_int("NOTIFY_MAX_ATTEMPTS", 6),
    "BACKOFF_SECONDS": float(env_str("NOTIFY_BACKOFF_SECONDS", "15")),
    "BACKOFF_MAX_SECONDS": float(env_str("NOTIFY_BACKOFF_MAX_SECONDS", "3600")),
    # A retry due sooner than this is waited for by the worker that saw the failure instead
    # of by the sweeper (which django-q2 runs at most every 30 s).
    "RETRY_INLINE_MAX_SECONDS": float(env_str("NOTIFY_RETRY_INLINE_MAX_SECONDS", "2")),
    "STUCK_SENDING_SECONDS": float(env_str("NOTIFY_STUCK_SENDING_SECONDS", "120")),
}

# Spreadsheets (django-import-export): import needs the model's add permission, export its
# view permission; an imported file is all or nothing; cells that a spreadsheet would run as
# formulas are escaped on export (CSV injection).
IMPORT_EXPORT_IMPORT_PERMISSION_CODE = "add"
IMPORT_EXPORT_EXPORT_PERMISSION_CODE = "view"
IMPORT_EXPORT_USE_TRANSACTIONS = True
IMPORT_EXPORT_ESCAPE_FORMULAE_ON_EXPORT = True
IMPORT_EXPORT_IMPORT_IGNORE_BLANK_LINES = True
# Finance's list exports up to this many rows are written within the request; bigger ones
# by a django-q2 task (`refunds.exports`), so no web worker runs into gunicorn's timeout.
# The task may run EXPORT_TIMEOUT seconds (it claims its row, so a redelivery after Q_RETRY
# does nothing); its file is deleted after EXPORT_KEEP_DAYS.
EXPORT_INLINE_MAX_ROWS = env_int("EXPORT_INLINE_MAX_ROWS", 20_000)
EXPORT_TIMEOUT = env_int("EXPORT_TIMEOUT", 900)
EXPORT_KEEP_DAYS = env_int("EXPORT_KEEP_DAYS", 7)
# Erasure (orders.services_erasure): a customer with nothing of theirs touched for this many
# days — no order, message, address change or refund request — has their personal data
# replaced by the nightly retention sweeper, as `customer_anonymize` does. 0 turns it off.
# Three years: what China's E-commerce Law asks a merchant to keep transaction records for.
CUSTOMER_RETENTION_DAYS = env_int("CUSTOMER_RETENTION_DAYS", 3 * 365)

# Every handler masks phone numbers and e-mail addresses (config.pii.RedactPII). Django's own
# loggers are listed as Django's DEFAULT_LOGGING sets them, so that they too write through
# masking handlers (runserver's request lines carry search terms in their URLs).
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "pii": {"()": "config.pii.RedactPII"},
        "require_debug_false": {"()": "django.utils.log.RequireDebugFalse"},
        "require_debug_true": {"()": "django.utils.log.RequireDebugTrue"},
    },
    "formatters": {
        "django.server": {"()": "django.utils.log.ServerFormatter", "format": "[{server_time}] {message}", "style": "{"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "filters": ["pii"]},
        "debug_console": {"level": "INFO", "class": "logging.StreamHandler", "filters": ["require_debug_true", "pii"]},
        "django.server": {"level": "INFO", "class": "logging.StreamHandler", "formatter": "django.server", "filters": ["pii"]},
        "mail_admins": {
            "level": "ERROR",
            "class": "django.utils.log.AdminEmailHandler",
            "filters": ["require_debug_false", "pii"],
        },
    },
    "loggers": {
        "django": {"handlers": ["debug_console", "mail_admins"], "level": "INFO"},
        "django.server": {"handlers": ["django.server"], "level": "INFO", "propagate": False},
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "WARNING")},
}
