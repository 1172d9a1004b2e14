"""Users' e-mail addresses in Unicode's composed form (NFC), as the API and sign-in now keep them

An address was trimmed and lower-cased only, so `é` typed as one character and as `e` and a
combining accent were two addresses: the same person could be added twice to a client (or twice as
a partner user), and a user stored decomposed could not sign in typing the usual spelling. Every
address given is now composed; this composes the ones stored before: client users' (unique per
client), partner users' (unique in the product) and the addresses schedules send reports to (told
apart from the account's users by their address). A user whose composed address another user of the
same scope already holds is left as it was (the two are told apart by hand).

Sign-in throttle rows hold only hashes of what was typed; they are left to expire.

Revision ID: 0032_emails_composed
Revises: 0031_source_secrets_set_by
Create Date: 2026-12-06 09:15:00.000000
"""

import unicodedata
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0032_emails_composed"
down_revision: str | None = "0031_source_secrets_set_by"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _nfc(value: str) -> str:
    return unicodedata.normalize("NFC", value)


def _compose_users(bind: sa.Connection, table: str, scope: str | None) -> None:
    """Composes `table`'s e-mails, each unless another row of its scope (the same `scope` column,
    or the whole table) already holds the composed form."""
    scope_column = scope or "NULL"
    rows = bind.execute(sa.text(f"SELECT id, {scope_column}, email FROM {table}")).all()
    held = {(owner, email) for _, owner, email in rows}
    for row_id, owner, email in rows:
        composed = _nfc(email)
        if composed == email or (owner, composed) in held:
            continue
        bind.execute(
            sa.text(f"UPDATE {table} SET email = :composed WHERE id = :id"),
            {"composed": composed, "id": row_id},
        )
        held.add((owner, composed))


_SCHEDULES = sa.table("report_schedules", sa.column("id", sa.Integer), sa.column("recipient_emails", sa.JSON))


def _compose_schedules(bind: sa.Connection) -> None:
    """Composes the addresses schedules send to; two that compose alike become one."""
    schedules = bind.execute(sa.select(_SCHEDULES.c.id, _SCHEDULES.c.recipient_emails)).all()
    for schedule_id, addresses in schedules:
        composed = list(dict.fromkeys(_nfc(address) for address in addresses or []))
        if composed != (addresses or []):
            bind.execute(
                _SCHEDULES.update().where(_SCHEDULES.c.id == schedule_id).values(recipient_emails=composed)
            )


def upgrade() -> None:
    bind = op.get_bind()
    _compose_users(bind, "client_users", "client_id")
    _compose_users(bind, "partner_users", None)
    _compose_schedules(bind)


def downgrade() -> None:
    pass  # the composed form is the same text
