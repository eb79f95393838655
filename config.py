"""Configuration classes, read from the environment when the app is created.

Nothing here runs at import time: each class reads ``os.environ`` in ``from_env`` so a
test can set variables before building an app. The names are the public contract in
docs/interfaces.md; keep them exactly.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from pathlib import Path
from typing import ClassVar
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key, load_pem_public_key

BASE_DIR = Path(__file__).resolve().parent
INSTANCE_DIR = BASE_DIR / "instance"

# Credentials of the local WeChat stand-in (app/wechat/sandbox). They are public test
# values, used only when the environment gives none (development and tests).
SANDBOX_APPID = "wx5andb0x00000001"
SANDBOX_SECRET = "sandbox-secret-0123456789abcdef"  # noqa: S105 - public test value
SANDBOX_TOKEN = "sandboxtoken"  # noqa: S105 - public test value
SANDBOX_AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
SANDBOX_MCHID = "1900000001"
SANDBOX_APIV3_KEY = "sandboxapiv3key0123456789abcdefg"
SANDBOX_ORIGIN = "http://127.0.0.1:5001"
# 快递100's stand-in (app/wechat/sandbox/kuaidi100.py) checks these, as 快递100 checks yours.
SANDBOX_KUAIDI100_CUSTOMER = "SANDBOXKD100CUSTOMER"
SANDBOX_KUAIDI100_KEY = "sandbox-kuaidi100-key"
# The stand-in's mini-program (小程序) credentials: jscode2session, getwxacodeunlimit.
SANDBOX_MINIAPP_APPID = "wx5andb0x0000wxa"
SANDBOX_MINIAPP_SECRET = "sandbox-miniapp-secret-0123456789"  # noqa: S105 - public test value
# Where development and tests generate the stand-in's Pay key pairs (app/payments/sandbox_keys).
SANDBOX_PAY_KEYS_DIR = INSTANCE_DIR / "wechatpay-sandbox"


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def _proxy_count(value: str) -> int:
    """``TRUSTED_PROXIES`` as a count of proxies (0-10), refusing anything else."""
    if not value.isdecimal() or int(value) > 10:
        raise RuntimeError(f"TRUSTED_PROXIES must be a number of proxies (0-10), not {value!r}")
    return int(value)


def _positive_int_env(name: str, default: int) -> int:
    """An integer setting from the environment; anything but a positive integer is refused."""
    raw = _env(name)
    if raw is None:
        return default
    if not raw.strip().isdecimal() or int(raw) <= 0:
        raise RuntimeError(f"{name} must be a positive whole number of seconds, not {raw!r}")
    return int(raw)


def _instance_secret_key() -> str:
    """Return a secret key generated once into instance/ (development only)."""
    INSTANCE_DIR.mkdir(exist_ok=True)
    path = INSTANCE_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()


class Config:
    """Settings shared by every environment."""

    ENV_NAME = "base"
    TESTING = False
    DEBUG = False

    SQLALCHEMY_TRACK_MODIFICATIONS = False
    SQLALCHEMY_ENGINE_OPTIONS: ClassVar[dict] = {"pool_pre_ping": True}
    # How long a statement waits for a lock another transaction holds before it gives up
    # (PostgreSQL lock_timeout, SQLite busy_timeout); the request then gets a "busy, try
    # again" answer (503) and a job its retry, instead of hanging.
    DB_LOCK_TIMEOUT_MS = 10_000
    MAX_CONTENT_LENGTH = 8 * 1024 * 1024  # uploads: product images are checked again at 5 MB
    MAX_IMAGE_BYTES = 5 * 1024 * 1024
    WTF_CSRF_TIME_LIMIT = None  # tie CSRF tokens to the session instead of a clock

    # Staff sessions end 12 h after sign-in, or after 2 h without a request.
    STAFF_SESSION_MAX_AGE_SECONDS = 12 * 3600
    STAFF_SESSION_IDLE_SECONDS = 2 * 3600
    # Reverse proxies in front of the app (ProxyFix trusts that many X-Forwarded-* hops).
    TRUSTED_PROXIES = 0
    METRICS_ALLOW = "127.0.0.1,::1"  # who may read /metrics without METRICS_TOKEN
    LOG_FORMAT = "text"  # or "json" (app/core/observe.py)

    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = True
    REMEMBER_COOKIE_SECURE = True
    REMEMBER_COOKIE_HTTPONLY = True

    # Outside WeChat, sign-in is refused with an "open in WeChat" page, except where the
    # stand-in is used and the developer picks a test fan on its authorize page.
    ALLOW_SIGNIN_OUTSIDE_WECHAT = False
    RQ_QUEUES = ("default", "high", "low")
    UPLOAD_DIR: str = str(INSTANCE_DIR / "uploads")
    # 商家转账 scene for withdrawals ("1000" 现金营销; "1005" 佣金报酬 if the merchant has it).
    WECHAT_TRANSFER_SCENE_ID = "1000"
    # 快递100 real-time query (app/orders/tracking.py): without credentials the logistics
    # page shows the carrier, the number and a link to the carrier's own site.
    KUAIDI100_TIMEOUT_SECONDS = 5.0
    KUAIDI100_CACHE_SECONDS = 1800
    # The mini-program page its codes (getwxacodeunlimit) open; the scene is the ref code.
    WECHAT_MINIAPP_PAGE = "pages/index/index"

    # The worker's periodic work, in seconds (jobs/worker.py). Each may be set from the
    # environment under the same name; a value that is not a positive integer stops the start.
    TIMERS_INTERVAL_SECONDS = 60  # unpaid orders past their deadline, auto-completion
    SETTLEMENT_INTERVAL_SECONDS = 600  # commission settlement
    TRANSFER_SYNC_INTERVAL_SECONDS = 300  # withdrawal transfers still in flight at WeChat
    OUTBOX_SWEEP_INTERVAL_SECONDS = 300  # template messages whose send job was lost
    INCENTIVES_INTERVAL_SECONDS = 600  # tasks, invite rewards, leaderboards
    REPORTS_INTERVAL_SECONDS = 600  # report summaries
    PRUNE_INTERVAL_SECONDS = 3600  # old push dedupe and outbox rows
    RISK_SWEEP_SECONDS = 600  # risk checks' catch-up (app/risk/, jobs/risk.py)
    FUNNEL_ROLLUP_SECONDS = 600  # promotion funnel: Redis visits and the day's figures to the DB
    FUNNEL_REDIS_DAYS = 3  # how long the funnel's visit sets stay in Redis
    RECOVERY_INTERVAL_SECONDS = 10  # jobs of dead workers, paid orders without follow-up
    WORKER_TICK_SECONDS = 5  # how often every worker ticks (liveness, due jobs, slots)
    WORKER_ALIVE_SECONDS = 15  # a worker not heard of for this long is dead
    FOLLOW_UP_GRACE_SECONDS = 20  # a paid order this young may still have its job on the way
    FOLLOW_UP_BATCH_SIZE = 100  # paid orders a sweep (or commission job) follows up per transaction
    WECHAT_SEND_CHUNK = 50  # template messages one send job sends (app/wechat/outbox.py)
    WECHAT_SEND_LOCK_SECONDS = 120  # a message's sending lock; a dead sender's lapses after it
    # Customer pages (issue 17). Nickname and avatar are asked again (snsapi_userinfo) when
    # older than this; a search term shows under 热门搜索 once searched this often.
    WECHAT_PROFILE_REFRESH_DAYS = 30
    SEARCH_HOT_MIN_COUNT = 3
    WORKER_SETTINGS = (
        "TIMERS_INTERVAL_SECONDS",
        "SETTLEMENT_INTERVAL_SECONDS",
        "TRANSFER_SYNC_INTERVAL_SECONDS",
        "OUTBOX_SWEEP_INTERVAL_SECONDS",
        "INCENTIVES_INTERVAL_SECONDS",
        "REPORTS_INTERVAL_SECONDS",
        "PRUNE_INTERVAL_SECONDS",
        "RISK_SWEEP_SECONDS",
        "FUNNEL_ROLLUP_SECONDS",
        "FUNNEL_REDIS_DAYS",
        "RECOVERY_INTERVAL_SECONDS",
        "WORKER_TICK_SECONDS",
        "WORKER_ALIVE_SECONDS",
        "FOLLOW_UP_GRACE_SECONDS",
        "FOLLOW_UP_BATCH_SIZE",
        "WECHAT_SEND_CHUNK",
        "WECHAT_SEND_LOCK_SECONDS",
    )

    @classmethod
    def from_env(cls) -> dict:
        """Return this class's settings merged with what the environment says."""
        settings = {k: getattr(cls, k) for k in dir(cls) if k.isupper()}
        settings.update(
            SECRET_KEY=_env("SECRET_KEY"),
            SQLALCHEMY_DATABASE_URI=_env("DATABASE_URL"),
            # A read replica for report pages and CSV exports (app/core/replica.py).
            SQLALCHEMY_BINDS=(
                {"replica": _env("DATABASE_REPLICA_URL")} if _env("DATABASE_REPLICA_URL") else {}
            ),
            REDIS_URL=_env("REDIS_URL"),
            PUBLIC_BASE_URL=(_env("PUBLIC_BASE_URL") or "").rstrip("/") or None,
            WECHAT_APPID=_env("WECHAT_APPID"),
            WECHAT_SECRET=_env("WECHAT_SECRET"),
            WECHAT_TOKEN=_env("WECHAT_TOKEN"),
            WECHAT_AES_KEY=_env("WECHAT_AES_KEY"),
            # Production without an EncodingAESKey only on purpose (ProductionConfig).
            WECHAT_ALLOW_PLAINTEXT=_env("WECHAT_ALLOW_PLAINTEXT") == "1",
            WECHAT_API_BASE=_env("WECHAT_API_BASE", "https://api.weixin.qq.com"),
            WECHAT_OPEN_BASE=_env("WECHAT_OPEN_BASE", "https://open.weixin.qq.com"),
            WECHAT_MP_BASE=_env("WECHAT_MP_BASE", "https://mp.weixin.qq.com"),
            WECHAT_PAY_API_BASE=_env("WECHAT_PAY_API_BASE", "https://api.mch.weixin.qq.com"),
            WECHAT_PAY_MCHID=_env("WECHAT_PAY_MCHID"),
            WECHAT_PAY_APIV3_KEY=_env("WECHAT_PAY_APIV3_KEY"),
            WECHAT_PAY_PRIVATE_KEY_PATH=_env("WECHAT_PAY_PRIVATE_KEY_PATH"),
            WECHAT_PAY_CERT_SERIAL=_env("WECHAT_PAY_CERT_SERIAL"),
            WECHAT_PAY_PUBLIC_KEY_PATH=_env("WECHAT_PAY_PUBLIC_KEY_PATH"),
            WECHAT_PAY_PUBLIC_KEY_ID=_env("WECHAT_PAY_PUBLIC_KEY_ID"),
            UPLOAD_DIR=_env("UPLOAD_DIR", cls.UPLOAD_DIR),
            WECHAT_TRANSFER_SCENE_ID=_env("WECHAT_TRANSFER_SCENE_ID", cls.WECHAT_TRANSFER_SCENE_ID),
            # Optional: without them the mini-program doors answer 503 and posters carry
            # only the official account's QR code.
            WECHAT_MINIAPP_APPID=_env("WECHAT_MINIAPP_APPID"),
            WECHAT_MINIAPP_SECRET=_env("WECHAT_MINIAPP_SECRET"),
            WECHAT_MINIAPP_PAGE=_env("WECHAT_MINIAPP_PAGE", cls.WECHAT_MINIAPP_PAGE),
            TRUSTED_PROXIES=_proxy_count(_env("TRUSTED_PROXIES", "0")),
            # /metrics: addresses or networks allowed (comma-separated), or a bearer token.
            METRICS_ALLOW=_env("METRICS_ALLOW", cls.METRICS_ALLOW),
            METRICS_TOKEN=_env("METRICS_TOKEN"),
            # "json": one JSON object per log line, a line per request and per job.
            LOG_FORMAT=_env("LOG_FORMAT", cls.LOG_FORMAT),
            KUAIDI100_BASE_URL=_env("KUAIDI100_BASE_URL", "https://poll.kuaidi100.com"),
            KUAIDI100_CUSTOMER=_env("KUAIDI100_CUSTOMER"),
            KUAIDI100_KEY=_env("KUAIDI100_KEY"),
        )
        settings.update(
            {
                name: _positive_int_env(name, getattr(cls, name))
                for name in (
                    *cls.WORKER_SETTINGS,
                    "WECHAT_PROFILE_REFRESH_DAYS",
                    "SEARCH_HOT_MIN_COUNT",
                )
            }
        )
        return settings


class _SandboxDefaults(Config):
    """Development and tests: the local WeChat stand-in answers for WeChat."""

    ALLOW_SIGNIN_OUTSIDE_WECHAT = True

    @classmethod
    def from_env(cls) -> dict:
        settings = super().from_env()
        sandbox = _env("WECHAT_SANDBOX_ORIGIN", SANDBOX_ORIGIN)
        defaults = {
            "WECHAT_APPID": SANDBOX_APPID,
            "WECHAT_SECRET": SANDBOX_SECRET,
            "WECHAT_TOKEN": SANDBOX_TOKEN,
            "WECHAT_AES_KEY": SANDBOX_AES_KEY,
            "WECHAT_PAY_MCHID": SANDBOX_MCHID,
            "WECHAT_PAY_APIV3_KEY": SANDBOX_APIV3_KEY,
            "WECHAT_MINIAPP_APPID": SANDBOX_MINIAPP_APPID,
            "WECHAT_MINIAPP_SECRET": SANDBOX_MINIAPP_SECRET,
            "PUBLIC_BASE_URL": "http://127.0.0.1:5000",
        }
        for key, value in defaults.items():
            settings[key] = settings.get(key) or value
        for key in ("WECHAT_API_BASE", "WECHAT_OPEN_BASE", "WECHAT_MP_BASE", "WECHAT_PAY_API_BASE"):
            settings[key] = _env(key, sandbox)
        # 快递100's stand-in lives in the same server, with its own credentials.
        settings["KUAIDI100_BASE_URL"] = _env("KUAIDI100_BASE_URL", sandbox)
        for key, value in (
            ("KUAIDI100_CUSTOMER", SANDBOX_KUAIDI100_CUSTOMER),
            ("KUAIDI100_KEY", SANDBOX_KUAIDI100_KEY),
        ):
            settings[key] = settings[key] or value
        pay_keys = ("WECHAT_PAY_PRIVATE_KEY_PATH", "WECHAT_PAY_PUBLIC_KEY_PATH")
        if not all(settings[key] for key in pay_keys):
            # The stand-in's Pay keys, generated once and shared with it (never in production).
            from app.payments.sandbox_keys import ensure_sandbox_keys

            keys = ensure_sandbox_keys(SANDBOX_PAY_KEYS_DIR)
            settings["WECHAT_PAY_PRIVATE_KEY_PATH"] = str(keys.merchant_private_path)
            settings["WECHAT_PAY_CERT_SERIAL"] = keys.merchant_serial
            settings["WECHAT_PAY_PUBLIC_KEY_PATH"] = str(keys.wechatpay_public_path)
            settings["WECHAT_PAY_PUBLIC_KEY_ID"] = keys.public_key_id
        return settings


class DevelopmentConfig(_SandboxDefaults):
    """``make dev``: SQLite file and an embedded Redis under instance/."""

    ENV_NAME = "development"
    DEBUG = True
    SESSION_COOKIE_SECURE = False  # plain http on 127.0.0.1
    REMEMBER_COOKIE_SECURE = False

    @classmethod
    def from_env(cls) -> dict:
        settings = super().from_env()
        settings["SECRET_KEY"] = settings["SECRET_KEY"] or _instance_secret_key()
        settings["SQLALCHEMY_DATABASE_URI"] = settings["SQLALCHEMY_DATABASE_URI"] or (
            f"sqlite:///{INSTANCE_DIR / 'shop.db'}"
        )
        return settings


class TestConfig(_SandboxDefaults):
    """pytest: the fixtures give DATABASE_URL and REDIS_URL."""

    ENV_NAME = "test"
    TESTING = True
    # make test runs SQLite and PostgreSQL suites at once on two cores: 200 buyers queued
    # behind SQLite's one writer (test_orders_api) can wait past production's 10 s. The
    # tests are about what happens, not how long it takes (test_database_busy sets its own).
    DB_LOCK_TIMEOUT_MS = 30_000
    SESSION_COOKIE_SECURE = False
    REMEMBER_COOKIE_SECURE = False

    @classmethod
    def from_env(cls) -> dict:
        settings = super().from_env()
        settings["SECRET_KEY"] = settings["SECRET_KEY"] or "test-secret-key"
        settings["SQLALCHEMY_DATABASE_URI"] = settings["SQLALCHEMY_DATABASE_URI"] or "sqlite://"
        return settings


class UnsafeConfiguration(RuntimeError):
    """Production refuses to start; ``problems`` names every unsafe or missing setting."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        lines = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(
            f"APP_ENV=production refuses to start: {len(problems)} unsafe or missing "
            f"setting(s):\n{lines}"
        )


class ProductionConfig(Config):
    """gunicorn behind HTTPS with PostgreSQL and Redis; every secret from the environment.

    ``from_env`` refuses to build settings that are unsafe in production and names all
    the problems at once (``production_problems``), so create_app, the flask CLI and
    gunicorn's workers stop before serving anything.
    """

    ENV_NAME = "production"
    REQUIRED = (
        "SECRET_KEY",
        "SQLALCHEMY_DATABASE_URI",
        "REDIS_URL",
        "PUBLIC_BASE_URL",
        "WECHAT_APPID",
        "WECHAT_SECRET",
        "WECHAT_TOKEN",
        "WECHAT_PAY_MCHID",
        "WECHAT_PAY_APIV3_KEY",
        "WECHAT_PAY_PRIVATE_KEY_PATH",
        "WECHAT_PAY_CERT_SERIAL",
        "WECHAT_PAY_PUBLIC_KEY_PATH",
        "WECHAT_PAY_PUBLIC_KEY_ID",
    )

    @classmethod
    def from_env(cls) -> dict:
        settings = super().from_env()
        problems = production_problems(settings, cls.REQUIRED)
        if problems:
            raise UnsafeConfiguration(problems)
        return settings


# The stand-in's public development credentials: never valid in production.
_STAND_IN_VALUES = {
    "WECHAT_APPID": SANDBOX_APPID,
    "WECHAT_SECRET": SANDBOX_SECRET,
    "WECHAT_TOKEN": SANDBOX_TOKEN,
    "WECHAT_AES_KEY": SANDBOX_AES_KEY,
    "WECHAT_PAY_MCHID": SANDBOX_MCHID,
    "WECHAT_PAY_APIV3_KEY": SANDBOX_APIV3_KEY,
    "WECHAT_MINIAPP_APPID": SANDBOX_MINIAPP_APPID,
    "WECHAT_MINIAPP_SECRET": SANDBOX_MINIAPP_SECRET,
}
_ORIGINS = ("WECHAT_API_BASE", "WECHAT_OPEN_BASE", "WECHAT_MP_BASE", "WECHAT_PAY_API_BASE")
MIN_SECRET_KEY_BYTES = 32


def _env_name(key: str) -> str:
    return "DATABASE_URL" if key == "SQLALCHEMY_DATABASE_URI" else key


def production_problems(settings: dict, required: tuple[str, ...]) -> list[str]:
    """Every reason ``settings`` are unsafe for production, in plain words (empty = fine)."""
    problems = []
    missing = [_env_name(k) for k in required if not settings.get(k)]
    if missing:
        problems.append(f"missing required environment variables: {', '.join(missing)}")
    secret = settings.get("SECRET_KEY") or ""
    if secret and len(secret.encode()) < MIN_SECRET_KEY_BYTES:
        problems.append(
            f"SECRET_KEY is {len(secret.encode())} bytes; use at least {MIN_SECRET_KEY_BYTES} "
            "random bytes (python -c 'import secrets; print(secrets.token_hex(32))')"
        )
    for key in ("PUBLIC_BASE_URL", *_ORIGINS):
        value = settings.get(key) or ""
        parts = urlsplit(value)
        if value and (parts.scheme != "https" or not parts.hostname):
            problems.append(
                f"{key} must be an https:// origin (WeChat OAuth, JS-SDK and Pay need "
                f"HTTPS), not {value!r}"
            )
    for key, stand_in in _STAND_IN_VALUES.items():
        if settings.get(key) == stand_in:
            problems.append(f"{key} is the local WeChat stand-in's development value")
    problems += _aes_key_problems(settings)
    apiv3 = settings.get("WECHAT_PAY_APIV3_KEY") or ""
    if apiv3 and len(apiv3.encode()) != 32:
        problems.append(f"WECHAT_PAY_APIV3_KEY must be 32 bytes, not {len(apiv3.encode())}")
    problems += _key_file_problems(
        "WECHAT_PAY_PRIVATE_KEY_PATH", settings, "an RSA private key", _is_rsa_private
    )
    problems += _key_file_problems(
        "WECHAT_PAY_PUBLIC_KEY_PATH", settings, "an RSA public key", _is_rsa_public
    )
    return problems


def _aes_key_problems(settings: dict) -> list[str]:
    key = settings.get("WECHAT_AES_KEY")
    if not key:
        if settings.get("WECHAT_ALLOW_PLAINTEXT"):
            return []
        return [
            "WECHAT_AES_KEY is not set: set the official account's EncodingAESKey (safe "
            "mode), or WECHAT_ALLOW_PLAINTEXT=1 to accept plaintext pushes on purpose"
        ]
    try:
        valid = len(key) == 43 and len(base64.b64decode(key + "=", validate=True)) == 32
    except (binascii.Error, ValueError):
        valid = False
    if not valid:
        return ["WECHAT_AES_KEY must be the 43-character EncodingAESKey"]
    return []


def _is_rsa_private(data: bytes) -> bool:
    return isinstance(load_pem_private_key(data, password=None), RSAPrivateKey)


def _is_rsa_public(data: bytes) -> bool:
    return isinstance(load_pem_public_key(data), RSAPublicKey)


def _key_file_problems(key: str, settings: dict, what: str, parses) -> list[str]:
    """A Pay key file must exist, parse as ``what``, and not be the stand-in's."""
    value = settings.get(key)
    if not value:
        return []  # named among the missing variables
    path = Path(value).expanduser().resolve()
    if path.is_relative_to(SANDBOX_PAY_KEYS_DIR.resolve()):
        return [f"{key} points at the local WeChat stand-in's development keys ({path})"]
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return [f"{key}: {path} does not exist"]
    except OSError as err:
        return [f"{key}: {path} cannot be read ({err.strerror or type(err).__name__})"]
    if SANDBOX_PAY_KEYS_DIR.is_dir() and any(
        f.is_file() and f.read_bytes() == data for f in SANDBOX_PAY_KEYS_DIR.iterdir()
    ):
        return [f"{key} is a copy of the local WeChat stand-in's development key ({path})"]
    try:
        ok = parses(data)
    except (ValueError, TypeError):
        ok = False
    if not ok:
        return [f"{key}: {path} is not {what} in PEM format (unencrypted)"]
    return []


CONFIGS = {
    "development": DevelopmentConfig,
    "test": TestConfig,
    "production": ProductionConfig,
}


def config_for(name: str | None = None) -> dict:
    """Return settings for ``name`` (default: the ``APP_ENV`` variable, else development)."""
    name = name or _env("APP_ENV", "development")
    if name not in CONFIGS:
        raise RuntimeError(f"unknown APP_ENV {name!r}; choose one of {', '.join(CONFIGS)}")
    return CONFIGS[name].from_env()
