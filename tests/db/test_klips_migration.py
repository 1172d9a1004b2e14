"""The second edition's migration (SPEC §13): a first-edition klip keeps what it showed, its column
mapping becoming its definition, at the default size; dashboards start without filters; the new
constraints hold. On the test database's engine (SQLite, or PostgreSQL when configured)."""

from __future__ import annotations

import json

import pytest
from alembic import command
from sqlalchemy import create_engine, text
from sqlalchemy.exc import IntegrityError

from tenantry.db.migrate import alembic_config, upgrade
from tests.db import migrating


@pytest.fixture
def first_edition(tmp_path):
    """A SQLite database at the revision before the second edition, with two first-edition klips."""
    url = f"sqlite:///{tmp_path / 'first.db'}"
    upgrade(url, "0013_statement_index")
    with migrating.filling(url) as add:
        add("partners", id=1, name="P", timezone="UTC", currency="USD")
        add("data_sources", id=1, partner_id=1, name="S", kind="inline")
        add("dashboards", id=1, partner_id=1, name="D")
        add(
            "klips",
            id=1,
            dashboard_id=1,
            position=0,
            kind="bar",
            datasource_id=1,
            columns={"x": "month", "y": "sales"},
        )
        add("klips", id=2, dashboard_id=1, position=1, kind="table", datasource_id=1, columns={})
    return url


def test_first_edition_klips_keep_their_mapping_as_their_definition(first_edition):
    upgrade(first_edition)
    engine = create_engine(first_edition)
    with engine.begin() as conn:
        rows = conn.execute(text("SELECT id, size_w, size_h, definition FROM klips ORDER BY id")).all()
        assert [(i, w, h, json.loads(d)) for i, w, h, d in rows] == [
            (1, 6, 2, {"columns": {"x": "month", "y": "sales"}}),
            (2, 6, 2, {}),
        ]
        assert json.loads(conn.execute(text("SELECT filters FROM dashboards")).scalar_one()) == []
    engine.dispose()


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE klips SET size_w = 13 WHERE id = 1",
        "UPDATE klips SET size_h = 0 WHERE id = 1",
        "UPDATE klips SET kind = 'sparkle' WHERE id = 1",
    ],
)
def test_the_new_constraints_hold(first_edition, statement):
    upgrade(first_edition)
    engine = create_engine(first_edition)
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(text(statement))
    engine.dispose()


def test_text_klips_and_editors_are_allowed_and_going_back_keeps_the_first_editions_klips(first_edition):
    upgrade(first_edition)
    engine = create_engine(first_edition)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO klips (dashboard_id, position, title, kind, definition)"
                " VALUES (1, 2, 'Note', 'text', '{\"text\": \"hi\"}')"
            )
        )
    engine.dispose()
    command.downgrade(alembic_config(first_edition), "0013_statement_index")
    engine = create_engine(first_edition)
    with engine.begin() as conn:
        rows = conn.execute(text("SELECT id, kind, columns FROM klips ORDER BY id")).all()
        assert [(i, k, json.loads(c)) for i, k, c in rows] == [
            (1, "bar", {"x": "month", "y": "sales"}),
            (2, "table", {}),
        ]
    engine.dispose()
