"""The live view of a dashboard: its klips drawn as SVG in a grid, and a data version to poll.

The published page uses it now and the client portal's live view shares it. A page polls the
version; when a data source refreshes (or the dashboard changes) the version changes and the
page swaps in the new fragment. The same cached SVGs feed the PDF and PNG exports.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from html import escape

from sqlalchemy.orm import Session

from tenantry.charts import svg
from tenantry.charts.cache import KLIP_SVGS
from tenantry.dashboards import repository as repo
from tenantry.db.dashboard_models import DataSource, Klip
from tenantry.db.models import Dashboard


@dataclass(frozen=True)
class Drawing:
    klip_id: int
    title: str
    kind: str
    svg: str


def _key(klip: Klip, source_id: int, version: str) -> tuple[object, ...]:
    definition = json.dumps(klip.columns, sort_keys=True)
    return (klip.id, klip.kind, klip.title, definition, source_id, version)


def data_version(dashboard: Dashboard, klips: list[tuple[Klip, DataSource]]) -> str:
    """Changes whenever anything drawn on the dashboard would change."""
    digest = hashlib.sha256(f"{dashboard.id}|{dashboard.name}|{dashboard.updated_at.isoformat()}".encode())
    for klip, source in klips:
        digest.update(repr(_key(klip, source.id, source.version)).encode())
    return digest.hexdigest()[:20]


def current_version(db: Session, dashboard: Dashboard) -> str:
    return data_version(dashboard, repo.klips_with_sources(db, dashboard.id))


def draw_klips(db: Session, dashboard: Dashboard) -> tuple[str, list[Drawing]]:
    """The dashboard's version and its klips as SVG, drawing only those not cached yet."""
    klips = repo.klips_with_sources(db, dashboard.id)
    found = {klip.id: KLIP_SVGS.get(_key(klip, source.id, source.version)) for klip, source in klips}
    missing = [(klip, source) for klip, source in klips if found[klip.id] is None]
    if missing:
        snapshots = repo.rows_of(db, (source.id for _, source in missing))
        for klip, source in missing:
            version, rows = snapshots.get(source.id, ("", []))
            drawing = svg.render(klip.kind, klip.title, rows, klip.columns)
            # Keyed by the version the rows were read at, in case a refresh landed in between.
            KLIP_SVGS.put(_key(klip, source.id, version), drawing)
            found[klip.id] = drawing
    drawings = [Drawing(k.id, k.title, k.kind, found[k.id] or "") for k, _ in klips]
    return data_version(dashboard, klips), drawings


def fragment(drawings: list[Drawing]) -> str:
    """The klips in a grid, as an HTML fragment (the SVGs escape their own text)."""
    if not drawings:
        return '<p class="empty">This dashboard has no klips yet.</p>'
    cells = [
        f'<figure class="klip klip-{d.kind}" data-klip="{d.klip_id}" '
        f'aria-label="{escape(d.title)}">{d.svg}</figure>'
        for d in drawings
    ]
    return '<div class="klips">' + "".join(cells) + "</div>"
