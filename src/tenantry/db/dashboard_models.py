"""Tables for data sources, klips, dashboard shares and published links."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from tenantry.db.base import Base, UTCDateTime, ids


class DataSource(Base):
    __tablename__ = "data_sources"

    id: Mapped[int] = mapped_column(ids, primary_key=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id", ondelete="CASCADE"))
    # NULL: the partner's own data source.
    client_id: Mapped[int | None] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))
    url: Mapped[str | None] = mapped_column(String(2000))
    format: Mapped[str | None] = mapped_column(String(8))
    # The non-secret request settings of a `url` source (method, header names, query, body, auth
    # type and user name, records, paginate) or a `sql` source (engine, host, port, database,
    # user name, query); see tenantry.datasources.request.
    config: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # The secrets (header values, passwords, tokens) as one JSON object sealed by the vault
    # (tenantry.vault): never shown, logged or exported, and opened only to fetch.
    secrets: Mapped[str | None] = mapped_column(Text)
    # Who set those secrets: 'partner' (a partner user, or a template deployed by the partner) or
    # 'client' (a client's own user); NULL without secrets. A partner's credentials often reach
    # every client's data, so a client user may keep them (send "*****") only while leaving what
    # the source fetches as the partner defined it (tenantry.datasources.service).
    secrets_set_by: Mapped[str | None] = mapped_column(String(16))
    refresh_interval: Mapped[int | None] = mapped_column(Integer)
    next_refresh_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # A manual refresh waiting for the worker (also the first load of a new `url` source).
    refresh_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_refreshed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    refresh_fail_count: Mapped[int] = mapped_column(Integer, default=0)
    # The worker running this source's refresh, until when (see tenantry.worker).
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The last good snapshot: a list of {column: value} objects.
    rows: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    row_count: Mapped[int] = mapped_column(Integer, default=0)
    # A fresh random token on every successful load (empty before the first): klips are drawn
    # once per version, and a token is never reused even when ids are.
    version: Mapped[str] = mapped_column(String(32), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        Index("ix_data_sources_partner_client_id", "partner_id", "client_id", "id"),
        Index("ix_data_sources_client_id", "client_id"),
        Index("ix_data_sources_next_refresh_at", "next_refresh_at"),
        Index("ix_data_sources_refresh_requested_at", "refresh_requested_at"),
        CheckConstraint("kind in ('url', 'inline', 'sql')", name="kind"),
        CheckConstraint("refresh_interval IS NULL OR refresh_interval >= 60", name="refresh_interval"),
    )


class DataSourcePage(Base):
    """A slice of a data source's last good snapshot, as JSON text, so that listing rows reads and
    decodes only the slices it shows, never the whole snapshot (which `DataSource.rows` keeps for
    drawing klips). Written together with `rows`, in the same transaction."""

    __tablename__ = "data_source_pages"

    data_source_id: Mapped[int] = mapped_column(
        ForeignKey("data_sources.id", ondelete="CASCADE"), primary_key=True
    )
    # The index of the page's first row in the snapshot, and how many rows the page holds.
    first_row: Mapped[int] = mapped_column(Integer, primary_key=True)
    row_count: Mapped[int] = mapped_column(Integer)
    rows: Mapped[str] = mapped_column(Text)


class Klip(Base):
    __tablename__ = "klips"

    id: Mapped[int] = mapped_column(ids, primary_key=True)
    dashboard_id: Mapped[int] = mapped_column(ForeignKey("dashboards.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))
    # NO ACTION, checked at the end of the statement: a data source shown by a klip cannot be
    # deleted alone (its klips would go blank), yet deleting a client removes both together.
    # NULL: a text klip, which shows Markdown and reads no data.
    datasource_id: Mapped[int | None] = mapped_column(ForeignKey("data_sources.id"))
    # Its place on the dashboard's 12-column grid.
    size_w: Mapped[int] = mapped_column(Integer, default=6, server_default="6")
    size_h: Mapped[int] = mapped_column(Integer, default=2, server_default="2")
    # Everything else of the klip (`klips.spec.definition_of`): columns, series, query, format...
    definition: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    __table_args__ = (
        Index("ix_klips_dashboard_position", "dashboard_id", "position"),
        Index("ix_klips_datasource_id", "datasource_id"),
        CheckConstraint(
            "kind in ('value', 'bar', 'line', 'area', 'pie', 'donut', 'table', 'gauge', 'text')", name="kind"
        ),
        CheckConstraint("size_w BETWEEN 1 AND 12", name="size_w"),
        CheckConstraint("size_h BETWEEN 1 AND 6", name="size_h"),
    )


class DashboardShare(Base):
    __tablename__ = "dashboard_shares"

    dashboard_id: Mapped[int] = mapped_column(
        ForeignKey("dashboards.id", ondelete="CASCADE"), primary_key=True
    )
    client_user_id: Mapped[int] = mapped_column(
        ForeignKey("client_users.id", ondelete="CASCADE"), primary_key=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (Index("ix_dashboard_shares_client_user_id", "client_user_id"),)


class PublishedLink(Base):
    __tablename__ = "published_links"

    id: Mapped[int] = mapped_column(ids, primary_key=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id", ondelete="CASCADE"))
    # Copied from the dashboard so the public page checks its client's status in one query.
    client_id: Mapped[int | None] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    dashboard_id: Mapped[int] = mapped_column(ForeignKey("dashboards.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    # Only the SHA-256 of the token is kept; the prefix lets people tell their links apart.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    token_prefix: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_accessed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The sites that may frame the page (its CSP frame-ancestors); NULL: any site.
    allowed_origins: Mapped[list[str] | None] = mapped_column(JSON(none_as_null=True))

    __table_args__ = (
        Index("ix_published_links_dashboard_id", "dashboard_id"),
        Index("ix_published_links_partner_client", "partner_id", "client_id"),
    )
