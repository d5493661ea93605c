"""JSON logs carrying the request id of the request being served, with secrets in URLs redacted."""

from __future__ import annotations

import contextvars
import logging
import re
import sys
import uuid

from pythonjsonlogger.json import JsonFormatter

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)


def new_request_id() -> str:
    return uuid.uuid4().hex


# Query parameters that carry a secret: activation tokens (/activate?token=), access codes
# (/verify?code=), and anything named like a credential. Matched by name, case-insensitively.
_SECRET_PARAM = re.compile(
    r"([?&;](?:[\w.\-]*(?:token|code|password|passwd|secret|signature|session|key|auth)[\w.\-]*)=)[^&;#\s\"']*",
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


def configure_logging(level: str = "INFO", json_output: bool = True) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RequestIdFilter())
    if json_output:
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
                timestamp=False,
            )
        )
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"))
    root = logging.getLogger()
    for existing in list(root.handlers):
        if getattr(existing, "_tradecert", False):
            root.removeHandler(existing)
    handler._tradecert = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("alembic").setLevel(max(logging.WARNING, root.level))  # migration chatter
