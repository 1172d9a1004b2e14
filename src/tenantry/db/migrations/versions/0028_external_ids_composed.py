"""Clients' external ids in Unicode's composed form (NFC), as the API now keeps them

An external id is unique in its partner, but `É` typed as one character and as `E` and a combining
accent were two ids, so the same client could be created twice. The API and the import now compose
every external id they are given; this composes the ones stored before. One whose composed form
another client of the partner already holds is left as it was (the two are told apart by hand).

Revision ID: 0028_external_ids_composed
Revises: 0027_id_counters_repaired
Create Date: 2026-12-06 00:30:00.000000
"""

import unicodedata
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0028_external_ids_composed"
down_revision: str | None = "0027_id_counters_repaired"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    bind = op.get_bind()
    rows = bind.execute(
        sa.text("SELECT id, partner_id, external_id FROM clients WHERE external_id IS NOT NULL")
    ).all()
    held = {(partner_id, external_id) for _, partner_id, external_id in rows}
    for client_id, partner_id, external_id in rows:
        composed = unicodedata.normalize("NFC", external_id)
        if composed == external_id or (partner_id, composed) in held:
            continue
        bind.execute(
            sa.text("UPDATE clients SET external_id = :composed WHERE id = :id"),
            {"composed": composed, "id": client_id},
        )
        held.add((partner_id, composed))


def downgrade() -> None:
    pass  # the composed form is the same text
