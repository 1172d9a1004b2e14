"""`tenantry serve` starts only on a database migrated to the code's revision, and on an address it
can listen on."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from tenantry.db.migrate import upgrade
from tenantry.db.models import Event
from tenantry.db.session import Database
from tenantry.events.service import TRIAL_ENDED, TRIAL_WILL_END
from tests.conftest import REDIS_URL, START
from tests.factories import new_client
from tests.servers import served, tenantry, wait_for


def test_serve_refuses_a_database_that_was_never_migrated(tmp_path):
    result = tenantry("serve", "--port", "1", url="sqlite:///empty.db", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: the database has no tables yet; run `tenantry db upgrade` first"
    ]


def test_serve_refuses_a_database_left_at_an_older_revision(tmp_path):
    upgrade(f"sqlite:///{tmp_path}/old.db", "0001")
    result = tenantry("serve", "--port", "1", url="sqlite:///old.db", cwd=tmp_path)
    assert result.returncode == 2
    assert "is at revision 0001" in result.stderr
    assert result.stderr.strip().endswith("run `tenantry db upgrade` first")


def _trial_notices(database: Database) -> int:
    with database.session() as db:
        found = select(func.count()).select_from(Event).where(Event.type.in_([TRIAL_WILL_END, TRIAL_ENDED]))
        return db.scalar(found) or 0


class TestServeOnAnAddressItCannotListenOn:
    """SPEC §10: bad input ends the command in one line. An address that is taken or does not
    resolve is found before anything starts: the worker, which at once writes the trial notices
    that are due (and sends their e-mails), never runs."""

    @pytest.fixture
    def taken_port(self) -> Iterator[int]:
        with socket.socket() as holder:
            holder.bind(("127.0.0.1", 0))
            holder.listen()
            yield holder.getsockname()[1]

    @pytest.fixture
    def due_notice(self, http, partner) -> dict[str, str]:
        """A client whose trial has ended by the served clock (the settings' offset moves it past
        the end, whatever today's date): the worker's first look writes its notice."""
        new_client(http, partner, "trial")
        served_now = START + timedelta(days=60)
        offset = (served_now - datetime.now(UTC)).total_seconds()
        return {"TENANTRY_CLOCK_OFFSET_SECONDS": str(offset)}

    @pytest.mark.parametrize("processes", ["1", "2"])
    def test_a_port_already_taken_ends_the_command_in_one_line_before_the_worker_writes_anything(
        self, database_url, database, tmp_path, taken_port, due_notice, processes
    ):
        result = tenantry(
            "serve", "--port", str(taken_port), "--workers", processes, "--worker",
            url=database_url, cwd=tmp_path, env=due_notice,
        )  # fmt: skip
        assert result.returncode == 2
        assert result.stdout == ""
        assert result.stderr.splitlines() == [
            f"error: cannot listen on 127.0.0.1:{taken_port}: address already in use"
        ]
        assert _trial_notices(database) == 0

    def test_on_a_free_port_the_same_worker_writes_the_notice_at_once(
        self, database_url, database, tmp_path, due_notice
    ):
        log = tmp_path / "server.log"
        with served(database_url, REDIS_URL, log, "--worker", "--workers", "1", **due_notice):
            wait_for(lambda: _trial_notices(database) == 1, "the trial notice")

    # A name with an empty label: the C library refuses it without asking a DNS server (only
    # loopback may be reached), and `.invalid` would never resolve anyway.
    @pytest.mark.parametrize("processes", ["1", "2"])
    def test_a_host_that_does_not_resolve_ends_the_command_in_one_line_before_the_worker_writes_anything(
        self, database_url, database, tmp_path, due_notice, processes
    ):
        result = tenantry(
            "serve", "--host", "no-such-host..invalid", "--port", "8000", "--workers", processes, "--worker",
            url=database_url, cwd=tmp_path, env=due_notice,
        )  # fmt: skip
        assert result.returncode == 2
        assert result.stdout == ""
        [line] = result.stderr.splitlines()
        assert line.startswith("error: cannot listen on no-such-host..invalid:8000: ")
        assert _trial_notices(database) == 0
