"""Scheduled reports sent by two `tenantry serve --worker` processes on one PostgreSQL database,
their clocks moved past several slots (TENANTRY_CLOCK_OFFSET_SECONDS, how an outside process moves
its clock), to a real SMTP server: one report per schedule, for the latest slot only, marked late;
the policy table decides per status (SPEC §17)."""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from tenantry.clock import as_utc
from tenantry.db.report_models import ReportRun
from tests.conftest import REDIS_URL
from tests.content import WATERMARK, dashboard_in, pdf_text
from tests.reports.conftest import create
from tests.servers import served, wait_for

SECRET_KEY = "two-processes-secret-key-" + "y" * 32
ENCRYPTION_KEY = base64.urlsafe_b64encode(b"k" * 32).decode()


@contextmanager
def serve_process(
    database_url: str, redis_url: str | None, folder: Path, smtp_port: int, offset: float
) -> Iterator[str]:
    """`tenantry serve --worker` in its own process, with a real SMTP server behind it and its
    clock moved by TENANTRY_CLOCK_OFFSET_SECONDS (how an outside process moves its clock)."""
    folder.mkdir(parents=True, exist_ok=True)
    with served(
        database_url,
        redis_url,
        folder / "serve.log",
        "--worker",
        TENANTRY_SECRET_KEY=SECRET_KEY,
        TENANTRY_ENCRYPTION_KEY=ENCRYPTION_KEY,
        TENANTRY_SMTP_HOST="127.0.0.1",
        TENANTRY_SMTP_PORT=str(smtp_port),
        TENANTRY_CLOCK_OFFSET_SECONDS=str(offset),
    ) as url:
        yield url


def offset_to(instant: datetime) -> float:
    """The clock offset that makes a process started now see `instant`."""
    return (instant - datetime.now(UTC)).total_seconds()


def reports_received(smtp_server):
    return [m for m in list(smtp_server.messages) if str(m["Subject"]).startswith("report ")]


def runs_in_db(database, schedule_ids):
    with database.session() as db:
        return db.execute(
            select(
                ReportRun.schedule_id, ReportRun.slot, ReportRun.status, ReportRun.late, ReportRun.reason
            ).where(ReportRun.schedule_id.in_(schedule_ids))
        ).all()


# A month after the real date, so the processes' clocks are moved forward to it.
T0 = (datetime.now(UTC) + timedelta(days=30)).replace(hour=8, minute=0, second=0, microsecond=0)
FIRST_SLOT = T0 + timedelta(hours=1)


def _clients_in_every_status(http, make_partner, clock):
    """A schedule (daily 09:00 UTC) per status, each to its own recipient: {status: schedule_id}."""
    clock.set(T0 - timedelta(days=15))
    partner = make_partner(dashboards=50, users=50, published_links=50, api_calls_per_day=-1)
    schedules = {}
    # the expired trial starts 15 days before T0: at T0 it has ended
    _, _, dashboard_id = dashboard_in(http, partner, "trial", clock)
    schedules["trial_expired"] = dashboard_id
    clock.set(T0)
    for status in ("setup", "trial", "active", "disabled"):
        _, _, dashboard_id = dashboard_in(http, partner, status, clock)
        schedules[status] = dashboard_id
    ids = {}
    for status, dashboard_id in schedules.items():
        response = create(
            http,
            partner.headers,
            dashboard_id,
            time="09:00",
            timezone="UTC",
            subject=f"report {status}",
            recipients={"emails": [f"{status}@client.test"]},
        )
        assert response.status_code == 201, response.text
        assert response.json()["next_run_at"] == FIRST_SLOT.strftime("%Y-%m-%dT%H:%M:%SZ"), response.text
        ids[status] = response.json()["id"]
    return partner, ids


@pytest.mark.skipif(not os.environ.get("TENANTRY_TEST_DATABASE_URL"), reason="two processes on PostgreSQL")
def test_two_serve_processes_send_one_late_report_per_schedule_and_skip_disabled_and_expired(
    http, make_partner, clock, database, database_url, smtp_server, tmp_path
):
    _partner, ids = _clients_in_every_status(http, make_partner, clock)
    latest = FIRST_SLOT + timedelta(days=3)
    offset = offset_to(latest + timedelta(seconds=20))
    with ExitStack() as stack:
        for name in ("one", "two"):
            stack.enter_context(
                serve_process(database_url, REDIS_URL, tmp_path / name, smtp_server.port, offset)
            )
        wait_for(lambda: len(runs_in_db(database, list(ids.values()))) >= len(ids), "every schedule to run")
        wait_for(lambda: len(reports_received(smtp_server)) >= 3, "three reports")
        time.sleep(3)  # room for a duplicate to arrive, if one were sent
    by_subject: dict[str, int] = {}
    for message in reports_received(smtp_server):
        by_subject[message["Subject"]] = by_subject.get(message["Subject"], 0) + 1
    assert by_subject == {"report setup": 1, "report trial": 1, "report active": 1}
    for message in reports_received(smtp_server):
        (attachment,) = list(message.iter_attachments())
        watermarked = WATERMARK in pdf_text(attachment.get_content())
        assert watermarked is (message["Subject"] == "report setup"), message["Subject"]
    rows = {r.schedule_id: r for r in runs_in_db(database, list(ids.values()))}
    assert len(rows) == len(ids)
    for status, schedule_id in ids.items():
        run = rows[schedule_id]
        assert as_utc(run.slot) == latest, status
        assert run.late is True, status
        expected = "skipped" if status in ("trial_expired", "disabled") else "sent"
        assert run.status == expected, status
        if expected == "skipped":
            assert run.reason, status
