"""The live view of a dashboard: its klips drawn as SVG in a grid, and a data version to poll.

The published page uses it now and the client portal's live view shares it. A page polls the
version; when a data source refreshes (or the dashboard changes) the version changes and the
page swaps in the new fragment. The same cached SVGs feed the PDF and PNG exports.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from html import escape
from typing import Protocol

from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from tenantry.charts import svg
from tenantry.charts.cache import SvgCache
from tenantry.dashboards import repository as repo
from tenantry.dashboards.repository import PlacedKlip
from tenantry.db.models import Client, Dashboard
from tenantry.lifecycle import trial_of
from tenantry.owners import content_status
from tenantry.policy import Capability, Decision, decide
from tenantry.text import scrub

# How often a live page (published or in the portal) asks whether its data changed.
POLL_SECONDS = 15


class PageCache:
    """The published page per dashboard version (which covers its name and klips), rendered once
    and kept as the bytes around its nonce slots: a view joins them with its own nonce, which
    costs next to nothing, where searching the page for the slot would cost more than the rest."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        # Stands for the response's nonce in a cached page: random per cache, so no content can hold it.
        self.slot = secrets.token_hex(16)
        self._entries: OrderedDict[str, tuple[bytes, ...]] = OrderedDict()
        self._lock = threading.Lock()

    def cached(self, version: str, nonce: str) -> bytes | None:
        """The page of this version joined with `nonce`, if it was rendered already."""
        with self._lock:
            parts = self._entries.get(version)
            if parts is None:
                return None
            self._entries.move_to_end(version)
        return nonce.encode().join(parts)

    def page(self, version: str, nonce: str, render: Callable[[], str]) -> bytes:
        with self._lock:
            parts = self._entries.get(version)
            if parts is not None:
                self._entries.move_to_end(version)
        if parts is None:
            # Rendered outside the lock: two threads may render one version once each, never wrongly.
            parts = tuple(part.encode() for part in render().split(self.slot))
            with self._lock:
                self._entries[version] = parts
                while len(self._entries) > self.capacity:
                    self._entries.popitem(last=False)
        return nonce.encode().join(parts)


@dataclass
class LiveCache:
    """An app's drawings (held by its `Services`): each klip's SVG per version of its data, each
    dashboard's HTML fragment per data version (a version covers everything drawn on the
    dashboard, so a fragment never goes stale), and each published page per version."""

    klips: SvgCache = field(default_factory=SvgCache)
    fragments: SvgCache = field(default_factory=lambda: SvgCache(capacity=1024))
    pages: PageCache = field(default_factory=lambda: PageCache(capacity=1024))


@dataclass(frozen=True)
class Drawing:
    klip_id: int
    title: str
    kind: str
    svg: str


def _key(klip: PlacedKlip, version: str) -> tuple[object, ...]:
    return (klip.id, klip.kind, klip.title, klip.definition, klip.datasource_id, version)


class Board(Protocol):
    """What names a dashboard's drawing: a Dashboard row, or the public page's lighter read."""

    @property
    def id(self) -> int: ...
    @property
    def name(self) -> str: ...


def data_version(dashboard: Board, klips: list[PlacedKlip], watermark: bool = False) -> str:
    """Changes whenever anything drawn on the dashboard would change: its name, any klip's
    definition, position or data version (replaced klips get new rows, so new keys), or whether
    the Setup watermark is on (so an open page drops it when its client leaves Setup)."""
    digest = hashlib.sha256(f"{dashboard.id}|{dashboard.name}|{watermark}".encode())
    for klip in klips:
        digest.update(repr(_key(klip, klip.version)).encode())
    return digest.hexdigest()[:20]


def watermark_for(client: Client | None, now: datetime) -> bool:
    """Whether a live view of this client's content carries the Setup watermark (the policy
    table's VIEW_LIVE), as its downloads do; the partner's own content never does."""
    status = content_status(client.status, trial_of(client), now) if client is not None else None
    return status is not None and decide(Capability.VIEW_LIVE, status) is Decision.WATERMARK


def _draw(
    db: Session | Connection, cache: LiveCache, klips: list[PlacedKlip], watermark: bool = False
) -> list[Drawing]:
    """The klips as SVG, drawing only those not cached yet; the watermark, when asked, is laid
    over the cached drawings (they are the same for every status)."""
    found = {klip.id: cache.klips.get(_key(klip, klip.version)) for klip in klips}
    missing = [klip for klip in klips if found[klip.id] is None]
    if missing:
        snapshots = repo.rows_of(db, (klip.datasource_id for klip in missing))
        for klip in missing:
            version, rows = snapshots.get(klip.datasource_id, ("", []))
            drawing = svg.render(klip.kind, klip.title, rows, klip.columns)
            # Keyed by the version the rows were read at, in case a refresh landed in between.
            cache.klips.put(_key(klip, version), drawing)
            found[klip.id] = drawing
    mark = svg.watermarked if watermark else str
    return [Drawing(k.id, k.title, k.kind, mark(found[k.id] or "")) for k in klips]


def draw_klips(
    db: Session, dashboard: Dashboard, *, cache: LiveCache, watermark: bool = False
) -> tuple[str, list[Drawing]]:
    """The dashboard's version and its klips as SVG (what the exports typeset)."""
    klips = repo.placed_klips(db, dashboard.id)
    return data_version(dashboard, klips, watermark), _draw(db, cache, klips, watermark)


def live_view(
    db: Session | Connection,
    dashboard: Board,
    known_version: str | None = None,
    klips: list[PlacedKlip] | None = None,
    *,
    cache: LiveCache,
    watermark: bool = False,
) -> tuple[str, str | None]:
    """The dashboard's version, and its HTML fragment unless the caller already has that version.

    Asking costs one query when nothing changed (none when the caller read the klips already);
    the fragment itself is built once per version (the watermark is part of the version).
    """
    if klips is None:
        klips = repo.placed_klips(db, dashboard.id)
    version = data_version(dashboard, klips, watermark)
    if version == known_version:
        return version, None
    html = cache.fragments.get_or_draw(version, lambda: fragment(_draw(db, cache, klips, watermark)))
    return version, html


def fragment(drawings: list[Drawing]) -> str:
    """The klips in a grid, as an HTML fragment (the SVGs escape their own text)."""
    if not drawings:
        return '<p class="empty">This dashboard has no klips yet.</p>'
    cells = [
        f'<figure class="klip klip-{d.kind}" data-klip="{d.klip_id}" '
        f'aria-label="{escape(scrub(d.title))}">{d.svg}</figure>'
        for d in drawings
    ]
    return '<div class="klips">' + "".join(cells) + "</div>"
