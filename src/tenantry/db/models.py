"""The partner and client tables, and every other model file's tables with them.

Importing this module registers all tables on `Base.metadata` (Alembic's `env.py` and the tests'
`create_all` rely on it): the model files of other domains (`access_models`, `dashboard_models`,
`statements_models`, `worker_models`) are imported here, and like this one they take `Base` and
the column types from `tenantry.db.base`. There are no ORM relationships: rows refer to each
other by foreign keys only, and whoever needs a related row reads it.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

# Imported for their tables: Base.metadata knows every table once this module is imported.
from tenantry.db import (  # noqa: F401
    access_models,
    account_models,
    branding_models,
    dashboard_models,
    domain_models,
    report_models,
    statements_models,
    template_models,
    worker_models,
)
from tenantry.db.base import Base, UTCDateTime, ids


class Partner(Base):
    __tablename__ = "partners"

    id: Mapped[int] = mapped_column(ids, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    # A new timezone applies to the meter from the next month (meter.calendar): until
    # `timezone_from`, the meter's days are those of `previous_timezone`.
    previous_timezone: Mapped[str | None] = mapped_column(String(64))
    timezone_from: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # The plan: pool totals (-1 = unlimited), trial lengths, prices.
    plan_dashboards: Mapped[int] = mapped_column(Integer, default=-1)
    plan_users: Mapped[int] = mapped_column(Integer, default=-1)
    plan_published_links: Mapped[int] = mapped_column(Integer, default=-1)
    plan_api_calls_per_day: Mapped[int] = mapped_column(Integer, default=-1)
    trial_days: Mapped[int] = mapped_column(Integer, default=14)
    trial_extension_days: Mapped[int] = mapped_column(Integer, default=14)
    dashboard_price: Mapped[Decimal] = mapped_column(Numeric(12, 2), default=Decimal("10.00"))
    user_price: Mapped[Decimal] = mapped_column(Numeric(12, 2), default=Decimal("5.00"))
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    # Counters kept in step with every change, so no request scans the clients (SPEC §6).
    used_dashboards: Mapped[int] = mapped_column(Integer, default=0)
    used_users: Mapped[int] = mapped_column(Integer, default=0)
    used_published_links: Mapped[int] = mapped_column(Integer, default=0)
    allocated_dashboards: Mapped[int] = mapped_column(Integer, default=0)
    allocated_users: Mapped[int] = mapped_column(Integer, default=0)
    allocated_published_links: Mapped[int] = mapped_column(Integer, default=0)
    allocated_api_calls_per_day: Mapped[int] = mapped_column(BigInteger, default=0)
    client_count: Mapped[int] = mapped_column(Integer, default=0)


class PartnerUser(Base):
    __tablename__ = "partner_users"

    id: Mapped[int] = mapped_column(ids, primary_key=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id", ondelete="CASCADE"), index=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_sign_in: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (CheckConstraint("role in ('admin', 'editor', 'viewer')", name="role"),)


class Client(Base):
    __tablename__ = "clients"

    id: Mapped[int] = mapped_column(ids, primary_key=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    external_id: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16))
    trial_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    trial_ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    trial_extended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    alloc_dashboards: Mapped[int] = mapped_column(Integer, default=0)
    alloc_users: Mapped[int] = mapped_column(Integer, default=0)
    alloc_published_links: Mapped[int] = mapped_column(Integer, default=0)
    alloc_api_calls_per_day: Mapped[int] = mapped_column(BigInteger, default=0)
    usage_dashboards: Mapped[int] = mapped_column(Integer, default=0)
    usage_users: Mapped[int] = mapped_column(Integer, default=0)
    usage_published_links: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status_changed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_sign_in: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The days of the client's dashboards (date filters, day buckets): an IANA name, or None for
    # the partner's. Statements and the meter keep the partner's days (SPEC §2).
    timezone: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        UniqueConstraint("partner_id", "external_id", name="uq_clients_partner_external_id"),
        Index("ix_clients_partner_id_id", "partner_id", "id"),
        Index("ix_clients_partner_status_id", "partner_id", "status", "id"),
        CheckConstraint("status in ('setup', 'trial', 'active', 'disabled')", name="status"),
    )


class ClientProperty(Base):
    """A value of a client's, named by a key, that data sources put in their requests
    (`{{client.prop.KEY}}`)."""

    __tablename__ = "client_properties"

    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class ClientUser(Base):
    __tablename__ = "client_users"

    id: Mapped[int] = mapped_column(ids, primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    email: Mapped[str] = mapped_column(String(254))
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_sign_in: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (
        UniqueConstraint("client_id", "email", name="uq_client_users_client_email"),
        CheckConstraint("role in ('admin', 'editor', 'member')", name="role"),
    )


class Dashboard(Base):
    __tablename__ = "dashboards"

    id: Mapped[int] = mapped_column(ids, primary_key=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id", ondelete="CASCADE"), index=True)
    # NULL: the partner's own dashboard.
    client_id: Mapped[int | None] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    # The filters viewers choose (`klips.spec.DashboardFilter` as JSON), in order.
    filters: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list, server_default="[]")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class StatusChange(Base):
    """Append-only history of status changes; statements are computed from it."""

    __tablename__ = "status_changes"

    id: Mapped[int] = mapped_column(ids, primary_key=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id", ondelete="CASCADE"))
    # No foreign key: the history outlives a deleted client, so closed statements never change.
    client_id: Mapped[int] = mapped_column(ids)
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text, default="")

    __table_args__ = (
        # A client's history in order; on PostgreSQL it also holds what a statement reads of a row,
        # so each client's last change before a month is one index-only probe.
        Index(
            "ix_status_changes_client_at_id",
            "client_id",
            "at",
            "id",
            postgresql_include=["partner_id", "to_status"],
        ),
        Index("ix_status_changes_partner_at", "partner_id", "at"),
    )


class AllocationChange(Base):
    """Append-only history of a client's allocation (a snapshot of all four resources)."""

    __tablename__ = "allocation_changes"

    id: Mapped[int] = mapped_column(ids, primary_key=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id", ondelete="CASCADE"))
    # No foreign key, like the status history: it outlives a deleted client.
    client_id: Mapped[int] = mapped_column(ids)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    dashboards: Mapped[int] = mapped_column(Integer)
    users: Mapped[int] = mapped_column(Integer)
    published_links: Mapped[int] = mapped_column(Integer)
    api_calls_per_day: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (
        # As for the status history: a statement's probe for the last change before a month.
        Index(
            "ix_allocation_changes_client_at_id",
            "client_id",
            "at",
            "id",
            postgresql_include=["partner_id", "dashboards", "users"],
        ),
    )


class AuditEvent(Base):
    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(ids, primary_key=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id", ondelete="CASCADE"))
    client_id: Mapped[int | None] = mapped_column(BigInteger)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(100))
    target: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    __table_args__ = (
        Index("ix_audit_events_partner_at", "partner_id", "at"),
        Index("ix_audit_events_client_at", "client_id", "at"),
    )


class Event(Base):
    """Outbox of domain events (`client.status_changed`, ...), delivered by the worker."""

    __tablename__ = "events"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id", ondelete="CASCADE"))
    client_id: Mapped[int | None] = mapped_column(BigInteger)
    type: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    # Set once the worker has fanned the event out to its deliveries.
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (
        Index("ix_events_partner_created", "partner_id", "created_at"),
        Index("ix_events_dispatched_at", "dispatched_at"),
    )


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(ids, primary_key=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id", ondelete="CASCADE"), index=True)
    partner_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("partner_users.id", ondelete="CASCADE"), index=True
    )
    client_id: Mapped[int | None] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"), index=True)
    client_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("client_users.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(32), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (
        CheckConstraint("(partner_user_id IS NULL) <> (client_user_id IS NULL)", name="one_owner"),
    )


class IdempotencyRecord(Base):
    __tablename__ = "idempotency_records"

    id: Mapped[int] = mapped_column(ids, primary_key=True)
    # Whose key it is: `api_key:<id>` (keys are per caller).
    scope: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status_code: Mapped[int | None] = mapped_column(Integer)
    content_type: Mapped[str | None] = mapped_column(String(100))
    body: Mapped[bytes | None] = mapped_column()
    # When the request's own work committed: written in that same transaction (`api.deps.Work`), so
    # a record with no answer tells whether its request died before or after doing anything.
    carried_out_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (
        UniqueConstraint("scope", "key", name="uq_idempotency_scope_key"),
        Index("ix_idempotency_records_created_at", "created_at"),
    )


class ApiCallCounter(Base):
    """Daily API-call counters (the database meter; Redis replaces it when configured)."""

    __tablename__ = "api_call_counters"

    scope: Mapped[str] = mapped_column(String(64), primary_key=True)
    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger, default=0)
    # With Redis: the run of Redis the counter was started in (meter.counters.RedisCounter).
    epoch: Mapped[str | None] = mapped_column(String(40))
