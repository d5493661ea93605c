"""The rules history: every version as it went live, and corrections of a version in force."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from persistence.models.base import Base, UTCDateTime


class RulesVersion(Base):
    """A rules version as it went live (migration 0019): its content hash, the first time a
    server loaded it, and its files (JSON: file name → text). Append-only: written once,
    never changed; the history that in-place edits of past rule versions are checked against."""

    __tablename__ = "rules_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[str] = mapped_column(String(64), unique=True)
    went_live_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    files: Mapped[str] = mapped_column(Text)  # JSON


class RulesCorrection(Base):
    """A correction of a rules version in force that turned out wrong (migration 0027,
    issue 20): from ``corrected_at`` the rules ``version`` (a row of ``rules_versions``)
    replaces ``corrects`` (the versions whose rows it rewrites, comma-separated), decided by
    ``corrected_by`` for ``reason``. Append-only; the history guard reads the files from
    the newest correction on, and records priced under ``corrects`` keep naming it."""

    __tablename__ = "rules_corrections"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[str] = mapped_column(String(64))
    corrects: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text)
    corrected_by: Mapped[str] = mapped_column(String(100))
    corrected_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
