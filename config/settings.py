"""Questboard settings: everything comes from the environment, read here and only here,
each variable through one of the helpers of `infra/env.py`.

With no DATABASE_URL or REDIS_URL the app starts an embedded PostgreSQL and an embedded
Redis from pip wheels (`infra/embedded.py`): the production stack in miniature, with its
files under `.embedded/`. With no CELERY_BROKER_URL, Celery tasks run inline in the caller.
"""

from __future__ import annotations

import copy
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlparse

import dj_database_url
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

from infra import embedded
from infra.env import envbool, envchoice, envfloat, envint, envlist, envrate, envstr

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = envbool("DEBUG", False)
# The embedded default: no DATABASE_URL means this checkout's own PostgreSQL (and no
# REDIS_URL its own Redis), started on first use by whichever process needs it.
EMBEDDED_DATABASE = not envstr("DATABASE_URL")
EMBEDDED_REDIS = not envstr("REDIS_URL")
# Player tokens are signed, and the email encryption and lookup keys derived, with
# SECRET_KEY (unless JWT_SIGNING_KEY and FIELD_ENCRYPTION_KEYS are set). On the embedded
# default (or with DEBUG on) a key made once for this checkout stands in, kept in
# `.embedded/`; anything else refuses to start without one.
SECRET_KEY = envstr("SECRET_KEY")
if not SECRET_KEY:
    if not (DEBUG or EMBEDDED_DATABASE):
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. With DEBUG off the app needs its own secret key: player "
            "tokens are signed and emails encrypted with keys derived from it (README, Configuration)."
        )
    SECRET_KEY = embedded.secret_key()
ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")

# --- Transport security (README, "Operating it") ------------------------------------------
# Production is served over HTTPS only: plain HTTP is redirected (except the health checks a
# load balancer makes), cookies are sent over HTTPS only, and browsers are told with HSTS to
# come back over HTTPS for HSTS_SECONDS. On by default with DEBUG off; HTTPS_ONLY=0 is for
# a server that plain HTTP must reach (the test suite's and the benchmark's own servers).
HTTPS_ONLY = envbool("HTTPS_ONLY", not DEBUG)
SECURE_SSL_REDIRECT = HTTPS_ONLY
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = HTTPS_ONLY
SECURE_HSTS_SECONDS = envint("HSTS_SECONDS", 31_536_000, minimum=0) if HTTPS_ONLY else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = envbool("HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = envbool("HSTS_PRELOAD", True)
# Behind a proxy that terminates TLS: the header it sets on requests that came over HTTPS,
# e.g. "X-Forwarded-Proto" (the value it must carry is "https"). Only when that proxy
# strips the header from what clients send.
if envstr("SECURE_PROXY_SSL_HEADER"):
    SECURE_PROXY_SSL_HEADER = ("HTTP_" + envstr("SECURE_PROXY_SSL_HEADER").upper().replace("-", "_"), "https")
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS")
SITE_URL = envstr("SITE_URL", "http://127.0.0.1:8000")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_api_key",
    "rest_framework_simplejwt.token_blacklist",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "tracker",
    "achievements",
    "stats",
    "leaderboards",
    "analytics",
    "players",
]

MIDDLEWARE = [
    "infra.middleware.RequestLogMiddleware",
    "infra.middleware.ControlCharacterMiddleware",
    "infra.middleware.DatabaseBusyMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # The browser's middleware, each skipped by API calls that carry a game key or an
    # access token (infra.middleware.BrowserOnly names what it wraps).
    "infra.middleware.Sessions",
    "django.middleware.common.CommonMiddleware",
    # Django's own, unwrapped, so its deployment checks see them: the API's views are
    # CSRF-exempt already, and a frame header costs nothing.
    "django.middleware.csrf.CsrfViewMiddleware",
    "infra.middleware.SignedInUser",
    # After authentication: a signed-in player's pages are charged to the player.
    "infra.ratelimits.RateLimitMiddleware",
    # Reads to a replica where staleness is harmless (only with DATABASE_REPLICA_URLS).
    "infra.middleware.ReplicaReadMiddleware",
    "infra.middleware.Messages",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "infra.middleware.ContentSecurityPolicy",
]

# Content-Security-Policy on every page (django-csp): scripts only from our own static
# files (no inline script anywhere), no plugins, no framing. Inline style attributes are
# allowed: the pages size progress bars with them, and a style cannot run code.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        # 'self' covers the same host's WebSockets (ws: and wss:) too (CSP level 3).
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        envstr("DATABASE_URL") or embedded.database_url(),
        conn_max_age=envint("DB_CONN_MAX_AGE", 60, minimum=0),
    )
}
if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    raise ImproperlyConfigured(
        "DATABASE_URL must name a PostgreSQL database (postgres://...): Questboard runs on PostgreSQL only."
    )
if envstr("TEST_DATABASE_NAME"):
    # Lets two test runs share one server without sharing a test database.
    DATABASES["default"]["TEST"] = {"NAME": envstr("TEST_DATABASE_NAME")}
_db_options = DATABASES["default"].setdefault("OPTIONS", {})
# Names this process's connections in pg_stat_activity, so an operator (and the burst
# test) can tell the gunicorn, Daphne and Celery processes' connections apart.
_db_options["application_name"] = envstr("DB_APPLICATION_NAME", "questboard")
# The few statements Questboard prepares (infra.sql.prepared_cursor: the unlock, the feed,
# a row by primary key) are planned once per connection and run with that plan. Under the
# default `auto`, PostgreSQL kept planning the single unlock afresh on every run (its
# estimate for a one-element array favours a custom plan), 1.4 ms of planning for 0.7 ms
# of work (docs/benchmarks.md). The ORM's statements are not prepared; this leaves them be.
_db_options["options"] = " ".join(
    filter(None, [_db_options.get("options", ""), "-c plan_cache_mode=force_generic_plan"])
)
# A bounded pool per process, for ASGI servers (Daphne, uvicorn): they run every sync view
# and database_sync_to_async call in a thread of its own, and Django's persistent
# connections are per thread, so a burst of 150 requests opened 150 connections and
# PostgreSQL (max_connections=100) refused the rest with 500s. `config/asgi.py` makes 10
# the default there; gunicorn sync workers serve one request at a time and keep 0 (off),
# one persistent connection per worker. A system check warns of ASGI without a pool.
_pool_max_size = envint("DB_POOL_MAX_SIZE", 0, minimum=0)
if _pool_max_size > 0:
    # Django's pool refuses persistent connections: a request's connection goes back to
    # the pool when the request ends instead.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # A pooled connection may have been idle for minutes; checking it on checkout costs
    # one round trip and turns a PostgreSQL restart into a reconnect, not a 500.
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    _db_options["pool"] = {
        "min_size": min(envint("DB_POOL_MIN_SIZE", 2, minimum=0), _pool_max_size),
        "max_size": _pool_max_size,
        # How long a request waits for a free connection before it answers 503 with
        # Retry-After (infra.middleware.DatabaseBusyMiddleware), never a 500.
        "timeout": envfloat("DB_POOL_TIMEOUT", 5.0, minimum=0.1),
        # Connections beyond min_size go back to PostgreSQL once idle: each DB_POOL_MAX_IDLE
        # seconds in which one was never needed, the pool closes one (so a burst's 10 are
        # down to min_size within about 9 periods). psycopg_pool's 10 minutes kept a burst's
        # connections from every other client for over an hour.
        "max_idle": envfloat("DB_POOL_MAX_IDLE", 5.0, minimum=1.0),
        # How long one failed attempt to (re)connect keeps retrying, backing off 1, 2, 4 s...,
        # before it gives up; the next request that waits then tries again at once. Under
        # psycopg_pool's 5 minutes the gaps kept doubling to a minute and more, so a restarted
        # PostgreSQL could wait about as long as it had been down before the pool tried it.
        "reconnect_timeout": 2.0,
    }

# --- Read replicas (infra/replicas.py, docs/replicas.md) --------------------------------
# PostgreSQL streaming replicas of DATABASE_URL, comma-separated. Each becomes an alias
# (replica1, replica2, ...) with the primary's connection options; reads that may be stale
# go to one of them, everything else to the primary. Unset: no router, nothing changes.
DATABASE_REPLICAS: list[str] = []
# How long a player (or game key) reads only the primary after a write of theirs, or after
# a game server changed their data: longer than the replica lag you alert on.
REPLICA_PIN_SECONDS = envint("REPLICA_PIN_SECONDS", 10, minimum=1)
# How long a process leaves a replica alone after it failed (its reads go to the primary).
REPLICA_RETRY_SECONDS = envint("REPLICA_RETRY_SECONDS", 30, minimum=0)
# The most a connection attempt to a replica may take (libpq's minimum is 2).
REPLICA_CONNECT_TIMEOUT = envint("REPLICA_CONNECT_TIMEOUT_SECONDS", 2, minimum=2)
for _number, _url in enumerate(envlist("DATABASE_REPLICA_URLS"), start=1):
    _replica = dj_database_url.parse(_url)
    if _replica["ENGINE"] != "django.db.backends.postgresql" or DATABASES["default"]["ENGINE"] != _replica["ENGINE"]:
        raise ImproperlyConfigured(
            "DATABASE_REPLICA_URLS names PostgreSQL streaming replicas of a PostgreSQL DATABASE_URL."
        )
    _replica["CONN_MAX_AGE"] = DATABASES["default"]["CONN_MAX_AGE"]
    _replica["CONN_HEALTH_CHECKS"] = DATABASES["default"].get("CONN_HEALTH_CHECKS", False)
    # The primary's pool and application_name (each alias gets a pool of its own).
    _replica["OPTIONS"] = {**copy.deepcopy(DATABASES["default"].get("OPTIONS", {})), **_replica.get("OPTIONS", {})}
    _replica["OPTIONS"]["connect_timeout"] = REPLICA_CONNECT_TIMEOUT
    # The test runner reads the test database through it instead of creating another.
    _replica["TEST"] = {"MIRROR": "default"}
    DATABASES[f"replica{_number}"] = _replica
    DATABASE_REPLICAS.append(f"replica{_number}")
if DATABASE_REPLICAS:
    if REPLICA_PIN_SECONDS < 1 or REPLICA_RETRY_SECONDS < 0 or REPLICA_CONNECT_TIMEOUT < 2:
        raise ImproperlyConfigured(
            "REPLICA_PIN_SECONDS must be 1 or more, REPLICA_RETRY_SECONDS 0 or more and "
            "REPLICA_CONNECT_TIMEOUT_SECONDS 2 or more."
        )
    DATABASE_ROUTERS = ["infra.replicas.ReplicaRouter"]

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "tracker.Player"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
if envbool("FAST_PASSWORD_HASHER", False):
    # Tests and the demo seeder create hundreds of accounts; PBKDF2 would dominate.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/"

# Keys for the player email encrypted at rest (comma-separated Fernet keys, newest first):
# the first encrypts, every one decrypts, and so do keys derived from SECRET_KEY and
# SECRET_KEY_FALLBACKS. To rotate: put the new key first, deploy, run
# `manage.py rotate_email_key`, then drop the old one (README, "Operating it").
FIELD_ENCRYPTION_KEYS = envlist("FIELD_ENCRYPTION_KEYS")
# Former secret keys, still accepted for Django's signatures (sessions, password reset)
# and for reading emails encrypted under them, while a new SECRET_KEY is rolled out.
SECRET_KEY_FALLBACKS = envlist("SECRET_KEY_FALLBACKS")

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
# collectstatic target for production; unset, WhiteNoise serves straight from the finders.
STATIC_ROOT = envstr("STATIC_ROOT") or None
WHITENOISE_USE_FINDERS = True

# --- Redis: cache, rank index, rate limits and channel layer ------------------------------
# The embedded Redis keeps the suite (EMBEDDED_REDIS_DB=15) apart from `make run` (0).
REDIS_URL = envstr("REDIS_URL") or embedded.redis_url(envint("EMBEDDED_REDIS_DB", 0, minimum=0))
# Every Redis client gives up after this long (connect, and each command), so an
# unresponsive Redis costs a request a bounded delay, never a hang: an unlock still commits
# and its ranks and live events follow through the outbox when Redis answers again.
REDIS_TIMEOUT = envfloat("REDIS_TIMEOUT_SECONDS", 0.5, minimum=0.01)
# After a call to the rank index's or the cache's Redis timed out or could not connect, a
# process leaves that Redis alone this long (infra/breaker.py): ranks and boards answer
# from PostgreSQL, cache calls fail at once, then a background ping decides when to ask
# again. So a silent Redis costs each process one timeout, not every request one.
REDIS_BREAKER_SECONDS = envfloat("REDIS_BREAKER_SECONDS", 5.0, minimum=0.1)
# The rank index's own Redis, if it is not REDIS_URL's: `redis+cluster://host:port` for a
# Redis Cluster (every index key carries one hash tag: docs/deployment.md, "Redis").
# Unset: the index shares REDIS_URL's (the cache's client).
RANK_INDEX_REDIS_URL = envstr("RANK_INDEX_REDIS_URL")
CACHES = {
    "default": {
        "BACKEND": "infra.cache.RedisCache",  # django-redis's, behind the breaker
        "LOCATION": REDIS_URL,
        "OPTIONS": {
            "SOCKET_CONNECT_TIMEOUT": REDIS_TIMEOUT,
            "SOCKET_TIMEOUT": REDIS_TIMEOUT,
        },
    }
}
# Pub/sub beat the list-based RedisChannelLayer on both our shapes of traffic
# (bench/channel_layers.py; numbers in docs/live.md).
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        # Pub/sub channels ignore Redis database numbers: a prefix keeps deployments
        # (and test runs) that share one Redis server from hearing each other.
        "CONFIG": {
            # A subscriber's reads wait with their own timeout; these bound connecting
            # and every publish, subscribe and unsubscribe.
            "hosts": [
                {
                    "address": REDIS_URL,
                    "socket_connect_timeout": REDIS_TIMEOUT,
                    "socket_timeout": REDIS_TIMEOUT,
                }
            ],
            "prefix": envstr("CHANNEL_PREFIX", "questboard" + urlparse(REDIS_URL).path),
        },
    }
}

# --- Celery ------------------------------------------------------------------------------
CELERY_BROKER_URL = envstr("CELERY_BROKER_URL")
# Without a broker every task runs inline, in the caller's process, right after commit.
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
# Inline, Celery still takes a producer for each task to learn its serializer, and kombu
# warns of a missing broker host for it: the in-memory transport, where nothing is sent.
CELERY_BROKER_WRITE_URL = None if CELERY_BROKER_URL else "memory://localhost/"
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# Deployments (and test runs) sharing one broker keep apart by queue name.
CELERY_TASK_DEFAULT_QUEUE = envstr("CELERY_QUEUE", "celery")
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
# Publishing must fail fast when the broker is down: the request has already committed,
# and the periodic jobs below redo anything a lost publish would have done.
CELERY_BROKER_CONNECTION_TIMEOUT = 2
# Workers keep their database connections (CONN_MAX_AGE) instead of reconnecting for every
# task: Celery's Django fixup then closes them only every this many tasks, and
# config.celery closes a broken or aged one after each task, as Django does per request.
CELERY_DB_REUSE_MAX = 1000
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2}
# --- The outbox (infra/outbox.py, docs/outbox.md) ---------------------------------------
# "process": `manage.py relay_outbox` relays after commit (production, with a broker);
# "inline": each writing process relays its own events right after commit (no broker).
OUTBOX_RELAY = envchoice("OUTBOX_RELAY", "process" if CELERY_BROKER_URL else "inline", ("process", "inline"))
# Each kind of event and the function that relays a batch of them (in order, per kind).
OUTBOX_HANDLERS = {
    "unlocks": "achievements.tasks.relay_unlocks",
    "board_moves": "leaderboards.tasks.relay_board_moves",
    "reindex": "leaderboards.tasks.relay_reindex",
    "sessions": "infra.realtime.relay_session_checks",
}

# `celery beat` claims each job's period in Redis before sending it, so a second beat
# started by mistake runs nothing twice (infra/beat.py, docs/processes.md).
CELERY_BEAT_SCHEDULER = "infra.beat:OncePerPeriodScheduler"
CELERY_BEAT_SCHEDULE: dict[str, dict] = {
    "refresh-all-rarity": {"task": "achievements.tasks.refresh_all_rarity", "schedule": 15 * 60},
    "refresh-stale-completion": {"task": "stats.tasks.refresh_stale_completion", "schedule": 5 * 60},
    # Drift repair of the rank index (leaderboards.sync: bound = interval + overlap).
    "sync-rank-index": {"task": "leaderboards.tasks.sync_index", "schedule": 60},
    "close-due-seasons": {"task": "leaderboards.tasks.close_due_seasons", "schedule": 15},
    "snapshot-today": {"task": "players.tasks.snapshot_day", "schedule": 30 * 60},
    "snapshot-yesterday": {"task": "players.tasks.snapshot_yesterday", "schedule": crontab(hour=0, minute=10)},
    # Developer analytics: catch every game up to today so far (docs/analytics.md, "The aggregation job").
    "aggregate-analytics": {"task": "analytics.tasks.aggregate", "schedule": 10 * 60},
    # Anomaly review: score new unlocks for the review queue (docs/analytics.md, "Anomaly review").
    "score-unlocks": {"task": "analytics.tasks.score_unlocks", "schedule": 30},
    "rebuild-rank-index-nightly": {
        "task": "leaderboards.tasks.rebuild_index",
        "schedule": crontab(hour=4, minute=17),
    },
}

# --- API ---------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "tracker.auth.GameKeyAuthentication",
        "infra.tokens.PlayerJWTAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["infra.parsers.BoundedJSONParser"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "infra.parsers.FastNegotiation",
    "DEFAULT_SCHEMA_CLASS": "infra.schema.QuestboardSchema",
    "EXCEPTION_HANDLER": "infra.errors.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    # Atomic in Redis, shared by every process (infra/ratelimits.py); the sign-in and
    # sign-up endpoints set their own.
    "DEFAULT_THROTTLE_CLASSES": ["infra.ratelimits.CallerRateThrottle"],
}
# Request bodies above this size get a 413 before any parsing.
DATA_UPLOAD_MAX_MEMORY_SIZE = envint("MAX_REQUEST_BYTES", 1_048_576, minimum=1024)

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=envint("JWT_ACCESS_MINUTES", 15, minimum=1)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=envint("JWT_REFRESH_DAYS", 14, minimum=1)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": True,
    "AUTH_HEADER_TYPES": ("Bearer",),
    "SIGNING_KEY": envstr("JWT_SIGNING_KEY", SECRET_KEY),
    # Tokens carry a hash of the password hash: a new password, set by any road, ends every
    # token issued before it. With the session generation it makes the rule of
    # infra.tokens.check_token_current, which every request, refresh and socket applies.
    "CHECK_REVOKE_TOKEN": True,
    "TOKEN_OBTAIN_SERIALIZER": "infra.tokens.TokenObtainPairSerializer",
    "TOKEN_REFRESH_SERIALIZER": "infra.tokens.TokenRefreshSerializer",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Questboard API",
    "DESCRIPTION": (
        "Achievements, statistics and leaderboards across games. Game servers send "
        "`Authorization: Api-Key <key>`; players send `Authorization: Bearer <access>`."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "PREPROCESSING_HOOKS": ["config.urls.drop_aliases"],
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "infra.schema.named_parameters",
        "infra.schema.shaped_bodies",
    ],
    # Each choice set is one named schema component wherever it appears (docs/api.md, "The schema").
    "ENUM_NAME_OVERRIDES": {
        "Region": "tracker.regions.Region",
        "Privacy": "tracker.models.Privacy",
        "Source": "tracker.models.Source",
        "FriendshipStatus": "tracker.models.Friendship.Status",
        "FriendRequestAnswer": "players.api.ANSWERS",
        "Rarity": "achievements.models.Rarity",
        "AchievementType": "achievements.models.AchievementType",
        "AwardKind": "achievements.models.Award.Kind",
        "SeasonStatus": "leaderboards.models.Season.Status",
        "AnalyticsFormat": "analytics.api.FORMATS",
        "AnalyticsTable": "analytics.api.TABLE_NAMES",
        "FeedKind": "players.feed.Kind",
    },
    # Swagger UI is served from our own static files, never from a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- Product rules -----------------------------------------------------------------------
# A claimed unlock time may run ahead of the server clock by at most this (clock skew).
UNLOCK_MAX_CLOCK_SKEW = timedelta(seconds=envint("UNLOCK_MAX_CLOCK_SKEW_SECONDS", 300, minimum=0))
BATCH_MAX_ITEMS = 100
# How long a process may serve game keys, games and achievements from memory: a key
# revoked or an achievement edited in another process takes effect within this time.
CATALOGUE_CACHE_SECONDS = envint("CATALOGUE_CACHE_SECONDS", 5, minimum=0)
# How long the first page of a player's friends' feed stays kept in the cache
# (players/feedhead.py): news that could not change its stamp shows at the latest this
# late. 0 reads every page through the feed's statement.
FEED_HEAD_SECONDS = envint("FEED_HEAD_SECONDS", 60, minimum=0)


# --- Rate limits (infra/ratelimits.py, docs/rate-limits.md) -----------------------------
# A player (token or session), across the API and the pages.
RATE_LIMIT_PLAYER = envrate("RATE_LIMIT_PLAYER", "100/minute")
# A game key whose own requests_per_minute (admin) is blank. A game server speaks for many
# players: 6000/minute (100/s) is 60 players' worth and a tenth of what one 2-core web node
# serves, so no single studio can starve the others; a batch carries 100 unlocks.
RATE_LIMIT_GAME_KEY = envrate("RATE_LIMIT_GAME_KEY", "6000/minute")
# Callers with no credentials, per client address.
RATE_LIMIT_ANONYMOUS = envrate("RATE_LIMIT_ANONYMOUS", "60/minute")
# Password sign-ins (the token endpoint, the log-in pages) and token refreshes, per address;
# and sign-ins per username, whatever the address.
RATE_LIMIT_SIGN_IN = envrate("RATE_LIMIT_SIGN_IN", "10/minute")
RATE_LIMIT_SIGN_IN_USERNAME = envrate("RATE_LIMIT_SIGN_IN_USERNAME", "5/minute")
# Registrations (the API and the sign-up page), per address.
RATE_LIMIT_SIGN_UP = envrate("RATE_LIMIT_SIGN_UP", "10/hour")
# Images other sites embed (profile and share cards), per address: image proxies (GitHub's,
# a forum's) and link-preview bots fetch them for many viewers from few addresses.
RATE_LIMIT_EMBEDS = envrate("RATE_LIMIT_EMBEDS", "1200/minute")
# WebSocket handshakes are charged to RATE_LIMIT_PLAYER or RATE_LIMIT_ANONYMOUS like requests;
# the messages a client sends on one socket (pings) are limited per socket.
RATE_LIMIT_SOCKET_MESSAGES = envrate("RATE_LIMIT_SOCKET_MESSAGES", "60/minute")
# How many proxies of ours stand in front of the app; with N > 0 the client address is the
# Nth entry from the right of X-Forwarded-For instead of REMOTE_ADDR. Leave it 0 unless a
# proxy you run overwrites or appends that header: otherwise any client could pick its own.
RATE_LIMIT_TRUSTED_PROXIES = envint("RATE_LIMIT_TRUSTED_PROXIES", 0, minimum=0)
# Where the counters live: Redis when set (shared by every process), else process memory.
RATE_LIMIT_REDIS_URL = envstr("RATE_LIMIT_REDIS_URL", REDIS_URL)
# Every request waits at most this long for the counters' Redis before it is counted in its
# own process instead (the fail-safe in infra/ratelimits.py).
RATE_LIMIT_REDIS_TIMEOUT = envfloat("RATE_LIMIT_REDIS_TIMEOUT_SECONDS", 0.2, minimum=0.01)

# Every line names the request it was logged in (infra/logs.py): the id is also in the
# X-Request-ID response header, so a client's report leads to the server's traceback.
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "infra.logs.RequestIdFilter"}},
    "formatters": {
        "plain": {
            "()": "infra.logs.SafeFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s",
        }
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["request_id"]},
    },
    # Warnings and errors of every library (daphne, channels, celery, ...) through the same handler.
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        "questboard": {"level": envchoice("LOG_LEVEL", "INFO", LOG_LEVELS)},
        "questboard.requests": {
            "handlers": ["console"],
            "level": envchoice("REQUEST_LOG_LEVEL", "INFO", LOG_LEVELS),
            "propagate": False,
        },
        # Django's own handlers print only with DEBUG on (and mail admins we do not have):
        # replaced by the root's. django.request logs each unexpected exception (a 500) with
        # its traceback; its 4xx warnings would repeat the request log line, so errors only.
        "django": {"level": "WARNING"},
        "django.request": {"level": "ERROR"},
    },
}
