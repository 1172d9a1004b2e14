"""`/healthz` and `/metrics`."""

from __future__ import annotations

from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from tenantry.app import create_app
from tenantry.db.migrate import head_revision, upgrade
from tenantry.db.session import Database
from tenantry.metrics import METER_REFUSALS
from tests.conftest import REDIS_URL
from tests.content import make_client


class TestHealth:
    def test_healthz_answers_ok_with_the_schema_version_when_the_database_answers(self, http):
        response = http.get("/healthz")
        assert response.status_code == 200
        report = response.json()
        assert report["status"] == "ok"
        assert report["database"] == "ok"
        assert report["schema"]["current"] is True
        assert report["schema"]["version"] == head_revision()
        assert report["redis"] == ("ok" if REDIS_URL else "not configured")

    def test_healthz_answers_503_on_a_database_left_behind_the_code(self, settings, clock, tmp_path):
        url = f"sqlite:///{tmp_path}/old.db"
        upgrade(url, "0001")
        old = Database(url)
        with TestClient(create_app(settings, clock=clock, database=old)) as client:
            response = client.get("/healthz")
        old.dispose()
        assert response.status_code == 503
        assert response.json()["schema"] == {"version": "0001", "expected": head_revision(), "current": False}

    def test_healthz_says_degraded_but_serves_when_redis_cannot_be_reached(self, settings, clock, database):
        unreachable = settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"})
        with TestClient(create_app(unreachable, clock=clock, database=database)) as client:
            response = client.get("/healthz")
        assert response.status_code == 200
        assert response.json()["status"] == "degraded"
        assert response.json()["redis"] == "unavailable"

    def test_healthz_answers_503_when_the_database_cannot_be_reached(self, settings, clock, tmp_path):
        unreachable = Database(f"sqlite:///{tmp_path}/no/such/folder/x.db")
        with TestClient(create_app(settings, clock=clock, database=unreachable)) as client:
            response = client.get("/healthz")
        unreachable.dispose()
        assert response.status_code == 503
        assert response.json()["status"] == "unavailable"


class TestMetrics:
    def test_metrics_are_in_prometheus_text_format(self, http):
        response = http.get("/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        for name in (
            "tenantry_refreshes_total",
            "tenantry_refresh_lag_seconds",
            "tenantry_events_delivered_total",
            "tenantry_api_meter_refusals_total",
            "tenantry_refresh_queue_depth",
            "tenantry_refresh_queue_lag_seconds",
            "tenantry_event_deliveries_pending",
        ):
            assert f"# TYPE {name}" in response.text, name

    def test_the_queue_depth_counts_due_refreshes_and_the_lag_their_wait(
        self, http, partner, clock, data_server
    ):
        url = data_server.serve("/m.csv", "a\n1\n")
        client_id = make_client(http, partner, "active")
        for n in range(3):
            http.post(
                f"/api/1/clients/{client_id}/datasources",
                json={"name": f"s{n}", "kind": "url", "url": url, "format": "csv"},
                headers=partner.headers,
            )
        clock.advance(seconds=42)
        text = http.get("/metrics").text
        assert "tenantry_refresh_queue_depth 3.0" in text
        assert "tenantry_refresh_queue_lag_seconds 42.0" in text

    def test_the_meter_refusal_counter_can_be_incremented_by_the_meter(self, http):
        sample = ("tenantry_api_meter_refusals_total", {"reason": "daily_limit"})
        before = REGISTRY.get_sample_value(*sample)
        METER_REFUSALS.labels(reason="daily_limit").inc()
        assert REGISTRY.get_sample_value(*sample) == before + 1
        assert 'tenantry_api_meter_refusals_total{reason="daily_limit"} ' in http.get("/metrics").text
