"""Client properties: values of a client's (an account number, a region, a database name...)
that data sources put in their requests as `{{client.prop.KEY}}` (SPEC §14).

Who may do what: partner users read them (viewers too) and partner admins and editors replace
them; a client's admins and editors read them (they build the client's sources that use them);
members see nothing of them. No client user may change them: a property is how the partner
points a source at *this* client's data (a URL path, a header, a SQL parameter), so a client
that could change its own properties could make the partner's sources, and the credentials
stored with them, fetch another client's data.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy.orm import Session

from tenantry.audit import audit
from tenantry.auth.principal import Principal
from tenantry.clients import repository as repo
from tenantry.clock import Clock
from tenantry.errors import Forbidden
from tenantry.owners import require_reader


def properties_of(db: Session, caller: Principal, client_id: int) -> dict[str, str]:
    """A client's properties (another partner's or another client's: 404)."""
    client = repo.get_client(db, caller, client_id)
    require_reader(caller)
    return repo.properties_of(db, client.id)


def set_properties(
    db: Session, clock: Clock, caller: Principal, client_id: int, values: Mapping[str, str]
) -> dict[str, str]:
    """Replace all of a client's properties with `values` (partner admins and editors only)."""
    client = repo.get_client(db, caller, client_id)
    if not caller.is_partner:
        raise Forbidden("A client's properties are set by the partner; client users may only read them.")
    caller.require_write()
    repo.lock_client(db, client.id)  # two replacements take turns
    before = repo.properties_of(db, client.id)
    after = dict(sorted(values.items()))
    if after != before:
        repo.replace_properties(db, client.id, after)
        # Keys only: a property may hold something the audit log's readers should not see.
        audit(
            db,
            partner_id=client.partner_id,
            client_id=client.id,
            actor=caller.actor,
            action="client.properties_changed",
            target=f"client:{client.id}",
            at=clock.now(),
            details={
                "added": sorted(after.keys() - before.keys()),
                "removed": sorted(before.keys() - after.keys()),
                "changed": sorted(k for k in after.keys() & before.keys() if after[k] != before[k]),
            },
        )
        db.flush()
    return after
