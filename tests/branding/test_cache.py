"""The in-process cache of brands while a brand is being changed: other requests read it meanwhile
(pages, previews, e-mails), and none of them may leave the old brand, or a brand never committed,
in the cache for the requests after the change."""

from __future__ import annotations

import pytest

from tenantry import branding
from tenantry.auth.principal import Principal
from tenantry.branding import brand_for
from tenantry.branding.schemas import BrandingUpdate
from tenantry.branding.service import update_branding
from tenantry.partners.service import PartnerPlan, create_partner


@pytest.fixture
def admin(database, clock) -> Principal:
    with database.session(write=True) as db:
        created = create_partner(
            db, clock, name="Partner", admin_email="admin@partner.test", plan=PartnerPlan()
        )
        db.commit()
    return Principal("partner_user", created.partner_id, created.admin_user_id, "admin")


def shown(database, partner_id: int) -> str:
    """The product name a page drawn now, in a request of its own, shows."""
    with database.session() as db:
        return brand_for(db, partner_id).product_name


def test_a_page_drawn_while_a_change_is_saved_does_not_bring_the_old_brand_back(database, clock, admin):
    assert shown(database, admin.partner_id) == "Tenantry"
    with database.session(write=True) as writer:
        update_branding(writer, clock, admin, BrandingUpdate(product_name="Nordlys"))
        # Another request draws a page before the change is committed: it sees the old brand.
        assert shown(database, admin.partner_id) == "Tenantry"
        writer.commit()
    assert shown(database, admin.partner_id) == "Nordlys"


def test_a_read_that_began_before_the_change_was_committed_is_not_kept(database, clock, admin, monkeypatch):
    read = branding.read_brand

    def read_then_the_change_is_committed(db, partner_id, client_id=None):  # type: ignore[no-untyped-def]
        old = read(db, partner_id, client_id)
        monkeypatch.setattr(branding, "read_brand", read)  # the change reads the brand too
        with database.session(write=True) as writer:
            update_branding(writer, clock, admin, BrandingUpdate(product_name="Nordlys"))
            writer.commit()
        return old

    monkeypatch.setattr(branding, "read_brand", read_then_the_change_is_committed)
    assert shown(database, admin.partner_id) == "Tenantry"  # what it read, before the commit
    assert branding.read_brand is read
    assert shown(database, admin.partner_id) == "Nordlys"


def test_a_change_not_yet_committed_is_shown_only_to_its_own_request(database, clock, admin):
    with database.session(write=True) as writer:
        update_branding(writer, clock, admin, BrandingUpdate(product_name="Nordlys"))
        assert brand_for(writer, admin.partner_id).product_name == "Nordlys"  # its own change
        assert shown(database, admin.partner_id) == "Tenantry"
        writer.rollback()
    assert shown(database, admin.partner_id) == "Tenantry"


def test_a_change_made_in_a_savepoint_is_forgotten_when_the_transaction_commits(database, clock, admin):
    with database.session(write=True) as writer:
        with writer.begin_nested():
            update_branding(writer, clock, admin, BrandingUpdate(product_name="Nordlys"))
        assert shown(database, admin.partner_id) == "Tenantry"
        writer.commit()
    assert shown(database, admin.partner_id) == "Nordlys"
