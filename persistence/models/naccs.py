"""NACCS: offices, user IDs, logical terminals, their applications and notices."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, CheckConstraint, Date, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from persistence.models.base import Base, UTCDateTime


class NaccsOffice(Base):
    """A NACCS contract holder's office (事業所); its login is a NACCS_OFFICE account."""

    __tablename__ = "naccs_offices"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    contact_name: Mapped[str] = mapped_column(String(100))
    contact_email: Mapped[str] = mapped_column(String(254))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class NaccsUserId(Base):
    """利用者ID = 5-character user code + 3-character identification number (unique together)."""

    __tablename__ = "naccs_user_ids"
    __table_args__ = (Index("uq_naccs_user_ids_code", "user_code", "identification_number", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    office_id: Mapped[int] = mapped_column(ForeignKey("naccs_offices.id"), index=True)
    user_code: Mapped[str] = mapped_column(String(5))
    identification_number: Mapped[str] = mapped_column(String(3))
    industries: Mapped[str] = mapped_column(String(400))  # JSON list of industry names
    single_sign_on: Mapped[bool] = mapped_column(Boolean, default=False)
    application_id: Mapped[int | None] = mapped_column(ForeignKey("naccs_applications.id"))
    # the issued password, Fernet-encrypted, kept only during the viewing window
    password_encrypted: Mapped[str | None] = mapped_column(String(400))
    password_destroyed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class NaccsTerminal(Base):
    """論理端末 and its digital certificate (valid a year from issue)."""

    __tablename__ = "naccs_terminals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    office_id: Mapped[int] = mapped_column(ForeignKey("naccs_offices.id"), index=True)
    name: Mapped[str] = mapped_column(String(20), unique=True)
    area: Mapped[str] = mapped_column(String(10))
    equipment: Mapped[str] = mapped_column(String(40))
    issued_on: Mapped[dt.date] = mapped_column(Date)


class NaccsApplication(Base):
    """A user-code addition (変更申込) or a digital-certificate reissue; every transition is a
    conditional UPDATE on its state."""

    __tablename__ = "naccs_applications"
    __table_args__ = (
        CheckConstraint("kind IN ('USER_CODE_ADDITION', 'CERTIFICATE_REISSUE')", name="kind"),
        CheckConstraint("state IN ('SUBMITTED', 'CLARIFICATION_REQUESTED', 'APPROVED', 'COMPLETED', 'WITHDRAWN')",
                        name="state"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    office_id: Mapped[int] = mapped_column(ForeignKey("naccs_offices.id"), index=True)
    kind: Mapped[str] = mapped_column(String(24))
    state: Mapped[str] = mapped_column(String(24), index=True)
    receipt_number: Mapped[str] = mapped_column(String(12), unique=True)
    desired_date: Mapped[dt.date] = mapped_column(Date)
    start_date: Mapped[dt.date | None] = mapped_column(Date)
    reason: Mapped[str] = mapped_column(String(1000))
    contact: Mapped[str] = mapped_column(String(2000))  # JSON
    details: Mapped[str] = mapped_column(String(8000))  # JSON: user codes or terminal names
    clarification: Mapped[str | None] = mapped_column(String(2000))
    password_viewable_until: Mapped[dt.date | None] = mapped_column(Date)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    submitted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    approved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    completed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class NaccsNotice(Base):
    """新着情報 of an office, written in the same transaction as the event it reports."""

    __tablename__ = "naccs_notices"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    office_id: Mapped[int] = mapped_column(ForeignKey("naccs_offices.id"), index=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    category: Mapped[str] = mapped_column(String(20))
    message: Mapped[str] = mapped_column(String(1000))
