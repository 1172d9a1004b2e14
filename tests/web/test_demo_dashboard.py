"""The demo's grid dashboard (`tenantry demo`): every klip of "Store performance" is drawn from its
daily rows (none needs attention), its period filter defaults to the last 90 days, and the
weekly revenue compares with the previous period."""

from __future__ import annotations

from tenantry.demo import DEMO_PASSWORD, load_demo
from tests.factories import sign_in


def test_the_store_performance_dashboard_draws_every_klip_filtered_and_compared(http, database, clock):
    with database.session(write=True) as session:
        load_demo(session, clock, "http://testserver")
        session.commit()
    assert sign_in(http, "active@demo.tenantry.test", DEMO_PASSWORD).status_code == 303
    home = http.get("/app").text
    assert "Store performance" in home
    board = home.split("Store performance")[0].rsplit('href="/app/dashboards/', 1)[1].split('"')[0]
    page = http.get(f"/app/dashboards/{board}")
    assert page.status_code == 200, page.text
    html = page.text
    assert "Needs attention" not in html
    assert html.count('<figure class="klip') == 4
    assert "klip-value w-4 h-2" in html and "klip-bar w-8 h-2" in html and "klip-text w-4 h-2" in html
    assert '<option value="last_90_days" selected>' in html
    assert "vs previous period" in html
    assert "<h2>Store performance</h2>" in html
    north = http.get(f"/app/dashboards/{board}", params={"f.region": "North"}).text
    assert "Needs attention" not in north and '<option value="North" selected>' in north
