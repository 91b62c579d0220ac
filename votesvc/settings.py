"""Settings: one frozen object, built from the environment at the edge.

Nothing here is read at import time; ``Settings.from_env()`` is called by the
CLI or the app factory and the result is passed down explicitly.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Any, Literal

from votesvc.errors import ConfigError

__all__ = [
    "PLACEHOLDER_SECRET",
    "SECRET_MIN_LENGTH",
    "Database",
    "Settings",
    "database_from_env",
    "load_or_create_secret",
    "parse_database_url",
]

ENV_PREFIX = "VOTESVC_"
_LOG_LEVELS = ("INFO", "DEBUG", "WARNING", "ERROR")
SQLITE_FILE = "ledger.sqlite3"  # the default ledger, in the data dir
# The secret keys every phone hash: with a short or published one, whoever reads
# Redis or the ledger can hash all 7e9 mobile numbers and unmask the phones.
SECRET_MIN_LENGTH = 32  # characters; a generated secret is 64 hex digits (32 random bytes)
PLACEHOLDER_SECRET = "change-me"  # what deploy/votesvc.env.example ships (tests hold them equal)
_MAKE_SECRET = "python3 -c 'import secrets; print(secrets.token_hex(32))'"
_DATABASE_SCHEMES = ("postgresql", "postgres", "sqlite")
# A web origin as a Content-Security-Policy source: nothing else may reach that header.
_ORIGIN = re.compile(r"https?://(\*\.)?[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*(:[0-9]{1,5})?")


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the service is configured with. See README "Settings"."""

    data_dir: Path = Path("var")
    redis_url: str | None = None  # None: start and own an embedded Redis server
    redis_cluster: bool = False
    # embedded server only: "always" (a 201 is on disk) or "everysec" (faster; see README)
    redis_appendfsync: str = "always"
    redis_timeout: float = 0.5  # seconds; a vote fails fast with 503 past it
    allow_eviction: bool = False  # True: run on a Redis whose policy may evict (README)
    campaign_path: Path | None = None  # None: the demo campaign
    secret: bytes = field(default=b"", repr=False)
    tally_refresh: float = 0.5
    shards: int = 16
    batch_max: int = 512
    batch_in_flight: int = 4  # measured: 2 left the worker waiting on Redis (BENCHMARKS.md)
    database_url: str | None = None
    flush_interval: float = 0.25  # short cycles, small bursts: see BENCHMARKS.md
    snapshot_interval: float = 10.0
    flush_in_serve: bool = True  # False: a fleet runs `votesvc flush` processes instead
    flush_batch: int = 16384  # most votes one flush cycle writes
    flush_claim_after: float = 30.0  # seconds before another consumer's pending entry is taken
    sse_max: int = 10_000  # open /v1/tally/stream connections per process; 503 past it
    sse_heartbeat: float = 15.0  # seconds between comment lines on an idle stream
    log_level: str = "INFO"
    log_format: str = "text"  # or "json": one JSON object per line (votesvc.logs)
    metrics_port: int | None = None  # None: no metrics listener (votesvc.metrics)
    metrics_host: str = "127.0.0.1"
    cors_origins: tuple[str, ...] = ()  # origins whose pages may call the API
    embed_origins: tuple[str, ...] = ()  # origins whose pages may frame /embed/* (votesvc.pages)
    sms_sender: str | None = None  # "log" or "webhook:<URL>" (votesvc.sms); None: no SMS
    sms_webhook_secret: bytes = field(default=b"", repr=False)
    partner_keys: tuple[tuple[str, bytes], ...] = field(default=(), repr=False)  # (id, HMAC key)
    # Clients (as resolved for the vote path) that may reach the organisers' console.
    admin_allow: tuple[IPv4Network | IPv6Network, ...] = (
        ip_network("127.0.0.0/8"),
        ip_network("::1/128"),
    )

    def with_redis_url(self, url: str) -> Settings:
        return replace(self, redis_url=url)

    @property
    def database(self) -> Database:
        """The ledger database ``database_url`` names (SQLite in the data dir when unset)."""
        return parse_database_url(self.database_url, self.data_dir)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read ``VOTESVC_*`` variables; a missing secret is created in the data dir.

        A secret shorter than ``SECRET_MIN_LENGTH`` or equal to the placeholder
        of ``deploy/votesvc.env.example`` stops start-up (ConfigError).

        A variable that is unset takes the field's default above: defaults live there only.
        """
        env = Env(os.environ if environ is None else environ)
        data_dir = _data_dir(env)
        secret_text = env.text("SECRET")
        campaign = env.text("CAMPAIGN")
        origins = env.text("CORS_ORIGINS")
        values: dict[str, Any] = {
            "data_dir": data_dir,
            "redis_url": env.url("REDIS_URL", ("redis", "rediss", "unix")),
            "redis_cluster": env.flag("REDIS_CLUSTER"),
            "redis_appendfsync": env.choice("REDIS_APPENDFSYNC", ("always", "everysec")),
            "redis_timeout": env.number("REDIS_TIMEOUT"),
            "allow_eviction": env.flag("ALLOW_EVICTION"),
            "campaign_path": Path(campaign) if campaign else None,
            "secret": _checked_secret(secret_text, f"{ENV_PREFIX}SECRET")
            if secret_text
            else load_or_create_secret(data_dir),
            "tally_refresh": env.number("TALLY_REFRESH"),
            "shards": env.integer("SHARDS"),
            "batch_max": env.integer("BATCH_MAX"),
            "batch_in_flight": env.integer("BATCH_IN_FLIGHT"),
            "database_url": env.url("DATABASE_URL", _DATABASE_SCHEMES),
            "flush_interval": env.number("FLUSH_INTERVAL"),
            "snapshot_interval": env.number("SNAPSHOT_INTERVAL"),
            "flush_in_serve": env.flag("FLUSH_IN_SERVE"),
            "flush_batch": env.integer("FLUSH_BATCH"),
            "flush_claim_after": env.number("FLUSH_CLAIM_AFTER"),
            "sse_max": env.integer("SSE_MAX"),
            "sse_heartbeat": env.number("SSE_HEARTBEAT"),
            "log_level": env.choice("LOG_LEVEL", _LOG_LEVELS, upper=True),
            "log_format": env.choice("LOG_FORMAT", ("text", "json")),
            "metrics_port": env.port("METRICS_PORT"),
            "metrics_host": env.text("METRICS_HOST"),
            "cors_origins": None
            if origins is None
            else tuple(origin.strip() for origin in origins.split(",") if origin.strip()),
            "embed_origins": env.origins("EMBED_ORIGINS"),
            "sms_sender": env.text("SMS_SENDER"),
            "sms_webhook_secret": _encoded(env.secret("SMS_WEBHOOK_SECRET")),
            "partner_keys": _partner_keys(env.secret("PARTNER_KEYS")),
            "admin_allow": env.networks("ADMIN_ALLOW"),
        }
        settings = cls(**{name: value for name, value in values.items() if value is not None})
        parse_database_url(settings.database_url, data_dir)  # a malformed URL stops us here
        if settings.redis_cluster and settings.redis_url is None:
            raise ConfigError(
                f"{ENV_PREFIX}REDIS_CLUSTER needs {ENV_PREFIX}REDIS_URL (a cluster node's address)"
            )
        return settings


_DEFAULTS: dict[str, Any] = {f.name: f.default for f in fields(Settings)}


def _data_dir(env: Env) -> Path:
    text = env.text("DATA_DIR")
    default: Path = _DEFAULTS["data_dir"]
    return Path(text) if text else default


def database_from_env(environ: Mapping[str, str] | None = None) -> Database:
    """The ledger database the ``VOTESVC_*`` variables name, as ``Settings.from_env()``
    would give it, but creating nothing (``from_env`` creates a missing secret)."""
    env = Env(os.environ if environ is None else environ)
    return parse_database_url(env.url("DATABASE_URL", _DATABASE_SCHEMES), _data_dir(env))


@dataclass(frozen=True, slots=True)
class Database:
    """The ledger's database: a SQLite file, or a PostgreSQL URL."""

    kind: Literal["sqlite", "postgresql"]
    path: Path | None = None  # SQLite
    url: str | None = None  # PostgreSQL


def parse_database_url(url: str | None, data_dir: Path) -> Database:
    """``VOTESVC_DATABASE_URL``: unset, ``sqlite:///PATH`` or ``postgresql://...``."""
    if url is None:
        return Database("sqlite", path=data_dir / SQLITE_FILE)
    scheme, _, rest = url.partition("://")
    if scheme.lower() in ("postgresql", "postgres"):
        return Database("postgresql", url=url)
    if scheme.lower() == "sqlite" and rest.startswith("/") and rest != "/":
        return Database("sqlite", path=Path(rest[1:]))  # sqlite:///rel/path, sqlite:////abs/path
    if scheme.lower() == "sqlite":
        raise ConfigError(
            f"{ENV_PREFIX}DATABASE_URL={url!r} must name its file: "
            "sqlite:///relative/path or sqlite:////absolute/path"
        )
    raise ConfigError(
        f"{ENV_PREFIX}DATABASE_URL={url!r}: expected postgresql://... or sqlite:///PATH"
    )


def _encoded(text: str | None) -> bytes | None:
    return None if text is None else text.encode()


PARTNER_KEY_MIN_BYTES = 32


def _partner_keys(text: str | None) -> tuple[tuple[str, bytes], ...] | None:
    """``VOTESVC_PARTNER_KEYS="app12351=KEY,wechat=KEY"``: KEY is base64url, no padding."""
    if text is None:
        return None
    keys: dict[str, bytes] = {}
    for item in text.split(","):
        partner, sep, encoded = item.strip().partition("=")
        name = f"{ENV_PREFIX}PARTNER_KEYS"
        if not sep or not partner or not encoded:
            raise ConfigError(f"{name}: expected ID=KEY pairs separated by commas")
        if partner in keys:
            raise ConfigError(f"{name}: partner {partner!r} is listed twice")
        try:
            key = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        except (ValueError, binascii.Error):
            raise ConfigError(f"{name}: the key of {partner!r} is not base64url") from None
        if len(key) < PARTNER_KEY_MIN_BYTES:
            raise ConfigError(
                f"{name}: the key of {partner!r} decodes to {len(key)} bytes, "
                f"at least {PARTNER_KEY_MIN_BYTES} are needed"
            )
        keys[partner] = key
    return tuple(keys.items())


class Env:
    """Typed access to ``VOTESVC_*`` variables with one error style."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ

    def text(self, name: str) -> str | None:
        value = self.environ.get(ENV_PREFIX + name, "").strip()
        return value or None

    def secret(self, name: str) -> str | None:
        """``VOTESVC_NAME``, or the first line of the file ``VOTESVC_NAME_FILE`` names."""
        value = self.text(name)
        path = self.text(name + "_FILE")
        if value is not None and path is not None:
            raise ConfigError(f"set {ENV_PREFIX}{name} or {ENV_PREFIX}{name}_FILE, not both")
        if path is None:
            return value
        try:
            lines = Path(path).read_text("utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{ENV_PREFIX}{name}_FILE={path}: cannot read it ({exc})") from None
        first = lines[0].strip() if lines else ""
        if not first:
            raise ConfigError(f"{ENV_PREFIX}{name}_FILE={path} is empty")
        return first

    def number(self, name: str) -> float | None:
        raw = self.text(name)
        if raw is None:
            return None
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(f"{ENV_PREFIX}{name}={raw!r} is not a number") from None
        if not value > 0:
            raise ConfigError(f"{ENV_PREFIX}{name} must be greater than 0")
        return value

    def integer(self, name: str) -> int | None:
        raw = self.text(name)
        if raw is None:
            return None
        if not raw.isdigit() or int(raw) < 1:
            raise ConfigError(f"{ENV_PREFIX}{name}={raw!r} must be a whole number >= 1")
        return int(raw)

    def port(self, name: str) -> int | None:
        raw = self.text(name)
        if raw is None:
            return None
        if not raw.isdigit() or not 1 <= int(raw) <= 65535:
            raise ConfigError(f"{ENV_PREFIX}{name}={raw!r} must be a port number, 1 to 65535")
        return int(raw)

    def choice(self, name: str, choices: tuple[str, ...], *, upper: bool = False) -> str | None:
        raw = self.text(name)
        if raw is None:
            return None
        raw = raw.upper() if upper else raw.lower()
        if raw not in choices:
            raise ConfigError(f"{ENV_PREFIX}{name}={raw!r} must be one of {', '.join(choices)}")
        return raw

    def url(self, name: str, schemes: tuple[str, ...]) -> str | None:
        raw = self.text(name)
        if raw is None:
            return None
        scheme, sep, rest = raw.partition("://")
        if not sep or scheme.lower() not in schemes or not rest:
            forms = ", ".join(f"{scheme}://..." for scheme in schemes)
            raise ConfigError(f"{ENV_PREFIX}{name}={raw!r} must look like {forms}")
        return raw

    def networks(self, name: str) -> tuple[IPv4Network | IPv6Network, ...] | None:
        """Comma-separated CIDRs (an address alone is its own /32 or /128)."""
        raw = self.text(name)
        if raw is None:
            return None
        networks = []
        for item in raw.split(","):
            if not item.strip():
                continue
            try:
                networks.append(ip_network(item.strip(), strict=False))
            except ValueError:
                raise ConfigError(f"{ENV_PREFIX}{name}: {item.strip()!r} is not a CIDR") from None
        return tuple(networks)

    def origins(self, name: str) -> tuple[str, ...] | None:
        """Comma-separated web origins, ``https://host[:port]`` (``*.`` may lead the host)."""
        raw = self.text(name)
        if raw is None:
            return None
        found = []
        for item in raw.split(","):
            origin = item.strip().rstrip("/")
            if not origin:
                continue
            if not _ORIGIN.fullmatch(origin):
                raise ConfigError(
                    f"{ENV_PREFIX}{name}: {item.strip()!r} is not an origin like "
                    "https://news.example.com or https://*.example.com"
                )
            found.append(origin.lower())
        return tuple(found)

    def flag(self, name: str) -> bool | None:
        raw = self.text(name)
        if raw is None:
            return None
        raw = raw.lower()
        if raw in {"1", "true", "yes", "on"}:
            return True
        if raw in {"0", "false", "no", "off"}:
            return False
        raise ConfigError(f"{ENV_PREFIX}{name}={raw!r} must be true or false")


def load_or_create_secret(data_dir: Path) -> bytes:
    """The secret kept in ``data_dir/secret``, created (mode 0600) on first use.

    Only right for one host: a fleet must set the same ``VOTESVC_SECRET`` on
    every machine, or one phone would hash differently on each.
    """
    path = data_dir / "secret"
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(32) + "\n")
        secret = path.read_text().strip()
    except OSError as exc:
        raise ConfigError(f"cannot keep the secret in {path}: {exc.strerror}") from exc
    if not secret:
        raise ConfigError(f"{path} is empty: delete it, or set VOTESVC_SECRET")
    return _checked_secret(secret, str(path))


def _checked_secret(secret: str, source: str) -> bytes:
    """``secret`` as bytes, unless it is the placeholder or too short (never echoed)."""
    if secret == PLACEHOLDER_SECRET:
        raise ConfigError(
            f"{source} is still the placeholder of deploy/votesvc.env.example: "
            f"set 64 random hex digits ({_MAKE_SECRET})"
        )
    if len(secret) < SECRET_MIN_LENGTH:
        raise ConfigError(
            f"{source} is too short ({len(secret)} characters, at least {SECRET_MIN_LENGTH}): "
            f"set 64 random hex digits ({_MAKE_SECRET})"
        )
    return secret.encode()
