"""Client placeholders in a source's settings: filled in per client, encoded for where they land."""

from __future__ import annotations

import pytest

from tenantry.datasources.fetch import FetchError
from tenantry.datasources.placeholders import Context, MissingProperty, expand, expand_sql

ACME = Context(
    client_id=42, external_id="ext-9", name="Acme 100%", properties={"account": "a/b?c=d&e", "region": "eu"}
)


class TestExpand:
    def test_every_placeholder_form_is_filled_in(self):
        text = "{{client.id}}|{{client.external_id}}|{{ client.name }}|{{client.prop.region}}"
        assert expand(text, ACME) == "42|ext-9|Acme 100%|eu"

    def test_in_a_url_values_are_percent_encoded_reserved_characters_included(self):
        url = "https://api.example/v1/{{client.prop.account}}?who={{client.name}}"
        assert expand(url, ACME, url=True) == "https://api.example/v1/a%2Fb%3Fc%3Dd%26e?who=Acme%20100%25"

    def test_text_without_placeholders_is_unchanged(self):
        assert (
            expand("{{other.thing}} and {{client.unknown}} {single}", ACME)
            == "{{other.thing}} and {{client.unknown}} {single}"
        )

    def test_a_missing_property_is_named(self):
        with pytest.raises(MissingProperty, match=r"^The client has no property 'account_no'\.$") as caught:
            expand("{{client.prop.account_no}}", ACME)
        assert caught.value.key == "account_no"
        assert isinstance(caught.value, FetchError)

    def test_a_missing_external_id_is_a_fetch_error(self):
        with pytest.raises(FetchError, match="no external id"):
            expand("{{client.external_id}}", Context(1, None, "x", {}))

    def test_a_source_of_no_client_cannot_use_placeholders(self):
        with pytest.raises(FetchError, match="belongs to no client"):
            expand("https://a.example/{{client.id}}", None, url=True)
        assert expand("https://a.example/plain", None, url=True) == "https://a.example/plain"


class TestExpandSql:
    def test_placeholders_become_bound_parameters_never_sql_text(self):
        sql, params = expand_sql(
            "select * from t where client = {{client.id}} and name = {{client.name}}"
            " and r = {{client.prop.region}}",
            ACME,
            "pyformat",
        )
        assert sql == "select * from t where client = %(p0)s and name = %(p1)s and r = %(p2)s"
        assert params == {"p0": 42, "p1": "Acme 100%", "p2": "eu"}

    def test_a_literal_percent_is_doubled_so_the_driver_keeps_it(self):
        sql, params = expand_sql(
            "select 'x%' like name, 5 % 2 from t where id = {{client.id}}", ACME, "pyformat"
        )
        assert sql == "select 'x%%' like name, 5 %% 2 from t where id = %(p0)s"
        assert params == {"p0": 42}

    def test_a_value_that_looks_like_sql_stays_a_value(self):
        context = Context(1, None, "x'); drop table t; --", {})
        sql, params = expand_sql("select * from t where name = {{client.name}}", context, "pyformat")
        assert "drop" not in sql
        assert params == {"p0": "x'); drop table t; --"}

    def test_a_missing_property_in_sql_is_named(self):
        with pytest.raises(MissingProperty, match="'warehouse'"):
            expand_sql("select {{client.prop.warehouse}}", ACME, "pyformat")


@pytest.mark.parametrize(
    ("value", "encoded"), [(".", "%2E"), ("..", "%2E%2E"), ("...", "%2E%2E%2E"), ("a..b", "a..b")]
)
def test_in_a_url_a_value_of_dots_alone_is_encoded_so_it_is_no_path_step(value: str, encoded: str) -> None:
    url = "https://api.example/accounts/{{client.external_id}}/orders"
    assert (
        expand(url, Context(1, value, "x", {}), url=True) == f"https://api.example/accounts/{encoded}/orders"
    )
