"""Logs carrying the request id of the request being served, with secrets in URLs redacted:
JSON lines in production, one readable line a record in development (``TRADECERT_LOG_JSON``)."""

from __future__ import annotations

import contextvars
import logging
import re
import sys
import uuid

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)


def new_request_id() -> str:
    return uuid.uuid4().hex


# Query parameters that carry a secret: activation tokens (/activate?token=), access codes
# (/verify?code=), and anything named like a credential. Matched by name, case-insensitively.
# A GraphQL request over GET (refused, but logged) carries input values in query, variables
# and extensions: a login's password, a literal of the document.
_SECRET_PARAM = re.compile(
    r"([?&;](?:[\w.\-]*(?:token|code|password|passwd|secret|signature|session|key|auth|query|variables|extensions)"
    r"[\w.\-]*)=)[^&;#\s\"']*",
    re.IGNORECASE,
)
_SECRET_PATH = re.compile(r"(/sandbox-gateway/pay/)[^/?#\s\"']+")  # the hosted payment page's session
REDACTED = "[REDACTED]"


def redact(text: str) -> str:
    """``text`` with the values of secret query parameters (and payment-session paths) replaced."""
    if "=" in text:
        text = _SECRET_PARAM.sub(r"\1" + REDACTED, text)
    if "/sandbox-gateway/pay/" in text:
        text = _SECRET_PATH.sub(r"\1" + REDACTED, text)
    return text


class RequestIdFilter(logging.Filter):
    """Adds the request id and redacts secrets in URLs, in every record the handler writes
    (uvicorn's access log writes ``GET /activate?token=…`` as an argument of its message)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id_var.get()
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: redact(v) if isinstance(v, str) else v for k, v in record.args.items()}
        return True


class ReadableFormatter(logging.Formatter):
    """One line a person reads in a terminal: ``10:00:01 INFO  tradecert.http  POST /graphql 200
    3.1ms  [request id]`` (the id only for a record of a request; the full id, which a client may
    have sent as X-Request-ID to find its request)."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-5s %(name)s  %(message)s%(request_suffix)s", datefmt="%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        request_id = getattr(record, "request_id", None)
        extras = {key: value for key, value in record.__dict__.items() if key not in _SHOWN}
        record.request_suffix = ("".join(f"  {key}={_plain(value)}" for key, value in extras.items())
                                 + (f"  [{request_id}]" if request_id else ""))
        return super().format(record)


# a record's own attributes, the access line's fields its message already says, and uvicorn's
# terminal colours of its own message ("Started server process [\x1b[36m%d\x1b[0m]")
_SHOWN = frozenset({*logging.makeLogRecord({}).__dict__, "message", "asctime", "request_id", "request_suffix",
                    "method", "path", "status", "ms", "client", "taskName", "color_message"})


def _plain(value: object) -> str:
    """An extra field (``problems``, ``rejected_version``) on one line."""
    if isinstance(value, (list, tuple)):
        return "; ".join(str(item) for item in value)
    return str(value)


def configure_logging(level: str = "INFO", json_output: bool = False) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RequestIdFilter())
    if json_output:
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
                reserved_attrs=[*RESERVED_ATTRS, "color_message"],  # uvicorn's message again, with colour codes
                timestamp=False,
            )
        )
    else:
        handler.setFormatter(ReadableFormatter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        if getattr(existing, "_tradecert", False):
            root.removeHandler(existing)
    handler._tradecert = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("alembic").setLevel(max(logging.WARNING, root.level))  # migration chatter
