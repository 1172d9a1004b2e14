"""Tables for dashboard templates and the copies of them deployed to clients (SPEC §15)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tenantry.db.base import Base, UTCDateTime, ids


class Template(Base):
    """A partner's data sources and dashboards with placeholders; `body` is the current version
    (its sources' secrets sealed, as a data source keeps them)."""

    __tablename__ = "templates"

    id: Mapped[int] = mapped_column(ids, primary_key=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, default=1)
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = ({"sqlite_autoincrement": True},)


class TemplateInstance(Base):
    """One client's copy of a template: which of its dashboards and sources came from which part
    of the template, and a fingerprint of what was deployed (to tell a hand edit)."""

    __tablename__ = "template_instances"

    id: Mapped[int] = mapped_column(ids, primary_key=True)
    template_id: Mapped[int] = mapped_column(ForeignKey("templates.id", ondelete="CASCADE"))
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    # {"dashboards": [id per template dashboard, in order], "datasources": {ref: id}}
    mapping: Mapped[dict[str, Any]] = mapped_column(JSON)
    fingerprint: Mapped[str] = mapped_column(String(64))
    detached: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        # One instance a client: two deployments racing on one client cannot both insert.
        UniqueConstraint("template_id", "client_id"),
        {"sqlite_autoincrement": True},
    )
