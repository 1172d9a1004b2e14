"""The demo's grid dashboard (`tenantry demo`): every klip of "Store performance" is drawn from its
daily rows (none needs attention), its period filter defaults to the last 90 days, and the
weekly revenue compares with the previous period."""

from __future__ import annotations

from html.parser import HTMLParser

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


class FormFields(HTMLParser):
    """The fields the klip form sends as the browser would: inputs' values (checked boxes only),
    selects' selected options and textareas' text, in document order."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: list[tuple[str, str]] = []
        self.action = ""
        self._inside = False
        self._select: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = {k: v or "" for k, v in attrs}
        if tag == "form" and named.get("id") == "klip-form":
            self._inside, self.action = True, named["action"]
        if not self._inside:
            return
        if tag == "input" and "name" in named:
            if named.get("type") != "checkbox" or "checked" in named:
                self.fields.append((named["name"], named.get("value", "")))
        elif tag == "select":
            self._select = named["name"]
        elif tag == "option" and self._select is not None and "selected" in named:
            self.fields.append((self._select, named.get("value", "")))
        elif tag == "textarea":
            self._textarea = named["name"]
            self.fields.append((named["name"], ""))

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            name, text = self.fields[-1]
            self.fields[-1] = (name, text + data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None
        elif tag == "form":
            self._inside = False


def test_every_demo_klip_comes_back_unchanged_through_the_builders_edit_form(http, database, clock):
    with database.session(write=True) as session:
        load_demo(session, clock, "http://testserver")
        session.commit()
    assert sign_in(http, "active@demo.tenantry.test", DEMO_PASSWORD).status_code == 303
    home = http.get("/app").text
    board = home.split("Store performance")[0].rsplit('href="/app/dashboards/', 1)[1].split('"')[0]
    path = f"/app/dashboards/{board}/builder"
    before = _klips(database, int(board))
    for klip_id in before:
        form = FormFields()
        form.feed(http.get(path, params={"klip": klip_id}).text)
        assert form.action == f"{path}/klips/{klip_id}"
        answer = http.post(form.action, data=_grouped(form.fields), follow_redirects=False)
        assert answer.status_code == 303, answer.text
        assert "Klip " in http.get(path).text and 'role="alert"' not in http.get(path).text
    assert _klips(database, int(board)) == before


def _grouped(fields: list[tuple[str, str]]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for name, value in fields:
        grouped.setdefault(name, []).append(value)
    return grouped


def _klips(database, dashboard_id: int) -> dict[int, tuple[object, ...]]:
    from sqlalchemy import select

    from tenantry.db.dashboard_models import Klip

    with database.session() as session:
        rows = session.scalars(select(Klip).where(Klip.dashboard_id == dashboard_id)).all()
        return {k.id: (k.title, k.kind, k.datasource_id, k.size_w, k.size_h, k.definition) for k in rows}
