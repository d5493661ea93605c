"""Configuration from the environment, read once into one object ."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

PROJECT_DIR = Path(__file__).resolve().parents[2]  # resolvers/core/settings.py → the checkout


def _bool(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"not a boolean: {value!r}")


def _flag(env: Mapping[str, str], name: str, default: bool = False) -> bool:
    try:
        return _bool(env.get(name), default)
    except ValueError:
        raise ValueError(f"{name} must be 1 or 0, got {env.get(name)!r}") from None


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from None


def _networks(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    """Comma-separated IP addresses or CIDR networks, checked at start-up."""
    import ipaddress

    found = []
    for item in (env.get(name) or "").split(","):
        if item.strip():
            try:
                found.append(str(ipaddress.ip_network(item.strip(), strict=False)))
            except ValueError:
                raise ValueError(f"{name}: {item.strip()!r} is not an IP address or network") from None
    return tuple(found)


def _hosts(env: Mapping[str, str], name: str) -> frozenset[str]:
    """Comma-separated host names or IP addresses, compared as resolvers/webhooks/destinations.py
    does: lower case, no brackets, an address in its canonical form."""
    import ipaddress

    found = set()
    for item in (env.get(name) or "").split(","):
        host = item.strip().lower().removeprefix("[").removesuffix("]").rstrip(".")
        if host:
            try:
                host = str(ipaddress.ip_address(host))
            except ValueError:
                if not all(c.isalnum() or c in "-._" for c in host):
                    raise ValueError(f"{name}: {item.strip()!r} is not a host name or IP address") from None
            found.add(host)
    return frozenset(found)


def _database_url(env: Mapping[str, str], production: bool) -> str:
    url = env.get("TRADECERT_DATABASE_URL") or ""
    if production and not url:
        # the default is the checkout's development file, inside site-packages after `pip install .`
        raise ValueError("TRADECERT_DATABASE_URL must be set in production (postgresql+asyncpg://… or sqlite+aiosqlite:////srv/…)")
    return url or f"sqlite:///{PROJECT_DIR / 'var' / 'tradecert.db'}"


def _http_url(env: Mapping[str, str], name: str) -> str | None:
    """An absolute http(s) address, or None when unset; anything else refuses to start."""
    value = (env.get(name) or "").strip()
    if not value:
        return None
    if not value.lower().startswith(("http://", "https://")) or len(value) > 2000:
        raise ValueError(f"{name} must be an absolute http:// or https:// address")
    return value


def _secret(env: Mapping[str, str], production: bool) -> str:
    secret = env.get("TRADECERT_PAYMENT_SECRET") or ""
    if production and len(secret) < 32:
        raise ValueError("TRADECERT_PAYMENT_SECRET must be set (32 characters or more) in production")
    return secret or "sandbox-notification-secret"


@dataclass(frozen=True)
class Settings:
    database_url: str
    rules_dir: Path
    database_schema: str | None = None  # PostgreSQL search_path (one schema per tenant or test run)
    public_url: str = "http://127.0.0.1:8000"
    smtp_url: str | None = None
    mail_from: str = "noreply@tradecert.example"
    invoice_issuer: str = "日本商工会議所"  # statements are issued in its name
    invoice_registration_number: str = "T5010005003975"  # its qualified-invoice registration number
    run_jobs: bool = True  # `serve` runs the jobs on their schedule
    environment: str = "development"  # "production" turns GraphiQL and introspection off by default
    graphiql: bool = True
    introspection: bool = True
    allowed_origins: tuple[str, ...] = ()
    max_query_depth: int = 12
    max_query_tokens: int = 2000
    max_aliases: int = 30
    max_query_cost: int = 20_000  # values an answer may hold, estimated before it runs (schema/cost.py)
    max_response_bytes: int = 4_194_304  # 4 MiB of JSON: a page of 100 applications with every relation is < 1 MiB
    query_seconds: float = 10.0  # time budget of one query operation
    rules_poll_seconds: float = 2.0
    log_level: str = "INFO"
    log_json: bool = False  # JSON lines (production's default) or one readable line a record
    session_idle_minutes: int = 30  # a session unused this long ends
    session_absolute_hours: int = 12  # a session ends this long after login, used or not
    login_lock_after: int = 5  # failed logins in a row before the ID is refused for a while
    login_lock_seconds: int = 60  # first refusal period; doubles with each further failure
    login_lock_max_seconds: int = 3600
    # Guessing limits (resolvers/ratelimit.py): attempts per window, counted in the database
    # (so across workers) per client address and per target; every alias counts.
    rate_limit_window_seconds: int = 600
    verify_limit_per_address: int = 60  # verifyCertificate + /verify
    verify_limit_per_certificate: int = 30  # per certificate number, from any address
    activation_limit_per_address: int = 30  # activateSubAccount
    activation_limit_per_token: int = 10  # per activation link, from any address
    trusted_proxies: tuple[str, ...] = ()  # peers (IPs or CIDRs) whose X-Forwarded-For is believed
    payment_gateway: str = "sandbox"  # the only gateway in this repository (docs/payments.md)
    # the sandbox's test card pays for real coupons: production refuses it unless this says so
    allow_sandbox_gateway_in_production: bool = False
    payment_secret: str = "sandbox-notification-secret"  # signs gateway notifications (HMAC-SHA256)
    # where the sandbox card page's "back" link goes after a payment (None: public_url + "/")
    payment_return_url: str | None = None
    signing_key_file: Path = PROJECT_DIR / "var" / "signing-key.pem"  # Ed25519 key that signs certificates
    naccs_key_file: Path = PROJECT_DIR / "var" / "naccs-fernet.key"  # Fernet key for NACCS passwords in their window
    # a JSON manifest {"sha256:<hex>": "<document>"}: only those documents run (tradecert/trusted_documents.py)
    trusted_documents_file: Path | None = None
    # webhook destinations exempt from the private-address guard (and allowed plain http)
    webhook_allow_hosts: frozenset[str] = frozenset()

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **changes)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        production = env.get("TRADECERT_ENV", "development").lower() == "production"
        origins = tuple(o.strip().rstrip("/") for o in env.get("TRADECERT_ALLOWED_ORIGINS", "").split(",") if o.strip())
        return cls(
            database_url=_database_url(env, production),
            database_schema=env.get("TRADECERT_DATABASE_SCHEMA") or None,
            rules_dir=Path(env.get("TRADECERT_RULES_DIR") or PROJECT_DIR / "rules"),
            public_url=(env.get("TRADECERT_PUBLIC_URL") or "http://127.0.0.1:8000").rstrip("/"),
            smtp_url=env.get("TRADECERT_SMTP_URL") or None,
            mail_from=env.get("TRADECERT_MAIL_FROM") or "noreply@tradecert.example",
            invoice_issuer=env.get("TRADECERT_INVOICE_ISSUER") or "日本商工会議所",
            invoice_registration_number=env.get("TRADECERT_INVOICE_REGISTRATION_NUMBER") or "T5010005003975",
            run_jobs=_bool(env.get("TRADECERT_RUN_JOBS"), True),
            environment="production" if production else env.get("TRADECERT_ENV", "development").lower(),
            graphiql=_bool(env.get("TRADECERT_GRAPHIQL"), not production),
            introspection=_bool(env.get("TRADECERT_INTROSPECTION"), not production),
            allowed_origins=origins,
            max_query_depth=_int(env, "TRADECERT_MAX_QUERY_DEPTH", 12),
            max_query_tokens=_int(env, "TRADECERT_MAX_QUERY_TOKENS", 2000),
            max_aliases=_int(env, "TRADECERT_MAX_ALIASES", 30),
            max_query_cost=_int(env, "TRADECERT_MAX_QUERY_COST", 20_000),
            max_response_bytes=_int(env, "TRADECERT_MAX_RESPONSE_BYTES", 4_194_304),
            query_seconds=float(env.get("TRADECERT_QUERY_SECONDS") or 10.0),
            rules_poll_seconds=float(env.get("TRADECERT_RULES_POLL_SECONDS") or 2.0),
            log_level=(env.get("TRADECERT_LOG_LEVEL") or "INFO").upper(),
            log_json=_bool(env.get("TRADECERT_LOG_JSON"), production),  # a person reads the terminal in development
            session_idle_minutes=_int(env, "TRADECERT_SESSION_IDLE_MINUTES", 30),
            session_absolute_hours=_int(env, "TRADECERT_SESSION_ABSOLUTE_HOURS", 12),
            login_lock_after=_int(env, "TRADECERT_LOGIN_LOCK_AFTER", 5),
            login_lock_seconds=_int(env, "TRADECERT_LOGIN_LOCK_SECONDS", 60),
            login_lock_max_seconds=_int(env, "TRADECERT_LOGIN_LOCK_MAX_SECONDS", 3600),
            rate_limit_window_seconds=_int(env, "TRADECERT_RATE_LIMIT_WINDOW_SECONDS", 600),
            verify_limit_per_address=_int(env, "TRADECERT_VERIFY_LIMIT_PER_ADDRESS", 60),
            verify_limit_per_certificate=_int(env, "TRADECERT_VERIFY_LIMIT_PER_CERTIFICATE", 30),
            activation_limit_per_address=_int(env, "TRADECERT_ACTIVATION_LIMIT_PER_ADDRESS", 30),
            activation_limit_per_token=_int(env, "TRADECERT_ACTIVATION_LIMIT_PER_TOKEN", 10),
            trusted_proxies=_networks(env, "TRADECERT_TRUSTED_PROXIES"),
            payment_gateway=env.get("TRADECERT_PAYMENT_GATEWAY") or "sandbox",
            allow_sandbox_gateway_in_production=_flag(env, "TRADECERT_ALLOW_SANDBOX_GATEWAY_IN_PRODUCTION"),
            payment_secret=_secret(env, production),
            payment_return_url=_http_url(env, "TRADECERT_PAYMENT_RETURN_URL"),
            signing_key_file=Path(env.get("TRADECERT_SIGNING_KEY_FILE") or PROJECT_DIR / "var" / "signing-key.pem"),
            naccs_key_file=Path(env.get("TRADECERT_NACCS_KEY_FILE") or PROJECT_DIR / "var" / "naccs-fernet.key"),
            trusted_documents_file=Path(env["TRADECERT_TRUSTED_DOCUMENTS"]) if env.get("TRADECERT_TRUSTED_DOCUMENTS") else None,
            webhook_allow_hosts=_hosts(env, "TRADECERT_WEBHOOK_ALLOW_HOSTS"),
        )
