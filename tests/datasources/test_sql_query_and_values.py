"""What a `sql` source refuses before connecting, and how database values become row values.
No server needed: these run everywhere (the servers are in test_sql_servers.py)."""

from __future__ import annotations

import datetime as dt
import math
import re
import uuid
from decimal import Decimal
from typing import Any

import pytest

from tenantry.datasources.fetch import FetchError
from tenantry.datasources.request import SourceRequest
from tenantry.datasources.sql import (
    EXECUTABLE_COMMENT,
    NOT_A_SELECT,
    NOT_ONE_STATEMENT,
    WRITE_REFUSED,
    check_query,
    fetch_sql,
    plain,
)
from tenantry.outbound import AllowList, Guard


class TestOneSelect:
    @pytest.mark.parametrize(
        ("engine", "query"),
        [
            ("postgresql", "SELECT 1"),
            ("postgresql", "select 1;"),
            ("postgresql", "SELECT 1 ;  ; \n"),
            ("postgresql", "  WITH x AS (SELECT 1) SELECT * FROM x"),
            ("postgresql", "(SELECT 1) UNION (SELECT 2)"),
            ("postgresql", "SELECT*FROM t"),
            ("postgresql", "SELECT ';' AS s"),
            ("postgresql", "SELECT 'it''s; fine'"),
            ("postgresql", "SELECT E'a\\'; b'"),
            ("postgresql", "SELECT $$; DROP TABLE t$$"),
            ("postgresql", "SELECT $q$ ; $$ ; $q$"),
            ("postgresql", 'SELECT 1 AS "a;b"'),
            ("postgresql", "SELECT 1 -- ; DELETE FROM t"),
            ("postgresql", "/* ; /* nested ; */ still ; */ SELECT 1"),
            ("postgresql", "SELECT $1"),
            ("mysql", "SELECT 'a\\'; b'"),
            ("mysql", "SELECT `a;b` FROM t"),
            ("mysql", "SELECT 1 # ; DELETE FROM t"),
            ("mysql", "SELECT 1 /* ; */"),
            ("mysql", "SELECT 1 -- ; DELETE FROM t"),
            ("mysql", "SELECT 1 --\t; DELETE FROM t"),
            ("mysql", "SELECT 1 /*+ MAX_EXECUTION_TIME(1000) */"),
            ("postgresql", "SELECT 1--1; DELETE FROM t"),
        ],
    )
    def test_one_select_is_accepted_whatever_its_strings_and_comments_hold(
        self, engine: str, query: str
    ) -> None:
        check_query(query, engine)

    @pytest.mark.parametrize(
        ("engine", "query", "message"),
        [
            ("postgresql", "SELECT 1; DELETE FROM t", NOT_ONE_STATEMENT),
            ("postgresql", "SELECT 1;DROP TABLE t;--", NOT_ONE_STATEMENT),
            ("postgresql", "SELECT ';'; DELETE FROM t", NOT_ONE_STATEMENT),
            ("postgresql", "SELECT $$x$$; DELETE FROM t", NOT_ONE_STATEMENT),
            ("postgresql", "SELECT 1 /* c */; COMMIT", NOT_ONE_STATEMENT),
            ("mysql", "SELECT 'a\\''; DELETE FROM t", NOT_ONE_STATEMENT),
            ("postgresql", "DELETE FROM t", NOT_A_SELECT),
            ("postgresql", "insert into t values (1)", NOT_A_SELECT),
            ("postgresql", "-- a comment first\nUPDATE t SET a = 1", NOT_A_SELECT),
            ("postgresql", "COPY t TO '/tmp/x'", NOT_A_SELECT),
            ("postgresql", "CALL wipe()", NOT_A_SELECT),
            ("postgresql", "SET default_transaction_read_only = off", NOT_A_SELECT),
            ("mysql", "SHOW DATABASES", NOT_A_SELECT),
            ("mysql", "SELECT * FROM t INTO OUTFILE '/tmp/x'", WRITE_REFUSED),
            ("mysql", "select * from t into   dumpfile '/tmp/x'", WRITE_REFUSED),
            # MySQL runs an executable comment's text, and reads `--` with no space after it as
            # two minus signs: neither hides what follows.
            ("mysql", "SELECT 1 AS one /*!INTO OUTFILE '/tmp/x' */", EXECUTABLE_COMMENT),
            ("mysql", "SELECT 1 /*!50000 INTO DUMPFILE '/tmp/x' */", EXECUTABLE_COMMENT),
            ("mysql", "SELECT 1 /*M!100000 ; DELETE FROM t */", EXECUTABLE_COMMENT),
            ("mysql", "SELECT 1--1 AS one INTO OUTFILE '/tmp/x'", WRITE_REFUSED),
            ("mysql", "SELECT 1--1; DELETE FROM t", NOT_ONE_STATEMENT),
            ("postgresql", "   ", "The query is empty."),
            ("postgresql", ";", "The query is empty."),
            ("postgresql", "SELECT 'never closed", "The query has a string that is never closed."),
            ("postgresql", "SELECT $$never closed", "The query has a string that is never closed."),
            ("postgresql", "SELECT 1 /* never closed", "The query has a comment that is never closed."),
        ],
    )
    def test_anything_else_is_refused_before_connecting(self, engine: str, query: str, message: str) -> None:
        with pytest.raises(FetchError) as caught:
            check_query(query, engine)
        assert str(caught.value) == message

    def test_a_refused_query_never_reaches_the_network(self) -> None:
        def resolve(host: str, port: int) -> list[str]:
            raise AssertionError("looked up")

        request = _request(query="DELETE FROM t")
        with pytest.raises(FetchError, match=re.escape(NOT_A_SELECT)):
            fetch_sql(request, guard=Guard(AllowList.parse("0.0.0.0/0"), resolve=resolve))


def _request(**settings: Any) -> SourceRequest:
    sql = {
        "engine": "postgresql",
        "host": "db.example.com",
        "port": 5432,
        "database": "shop",
        "username": "reader",
        "password": "s3cret-password",
        "query": "SELECT 1",
    } | settings
    return SourceRequest(kind="sql", url=None, format=None, sql=sql)


class TestSettings:
    @pytest.mark.parametrize(
        ("settings", "message"),
        [
            ({"engine": "oracle"}, "The database engine must be postgresql or mysql."),
            ({"host": ""}, "The database host must be a host name or an address."),
            ({"host": "/var/run/postgresql"}, "The database host must be a host name or an address."),
            ({"host": "db.example.com dbname=other"}, "The database host must be a host name or an address."),
            ({"host": "user@db.example.com"}, "The database host must be a host name or an address."),
            ({"port": 0}, "The database port must be a number from 1 to 65535."),
            ({"port": 70000}, "The database port must be a number from 1 to 65535."),
            ({"port": "5432; x"}, "The database port must be a number from 1 to 65535."),
        ],
    )
    def test_bad_settings_are_refused_plainly_before_connecting(
        self, settings: dict[str, Any], message: str
    ) -> None:
        with pytest.raises(FetchError) as caught:
            fetch_sql(_request(**settings), guard=Guard(resolve=_no_lookup))
        assert str(caught.value) == message

    def test_an_address_in_any_internal_spelling_is_refused_by_the_guard(self) -> None:
        for host in ("127.0.0.1", "0x7f000001", "10.1.2.3", "169.254.169.254", "[::1]", "::ffff:127.0.0.1"):
            with pytest.raises(FetchError, match=r"^address not allowed$"):
                fetch_sql(_request(host=host), guard=Guard(resolve=_no_lookup))

    def test_a_name_that_resolves_to_a_private_address_is_refused(self) -> None:
        guard = Guard(resolve=lambda host, port: ["10.0.0.5", "192.168.1.1"])
        with pytest.raises(FetchError, match=r"^address not allowed$"):
            fetch_sql(_request(), guard=guard)

    def test_a_name_that_does_not_resolve_reads_could_not_connect(self) -> None:
        def resolve(host: str, port: int) -> list[str]:
            raise OSError("no such name")

        with pytest.raises(FetchError, match=r"^could not connect$"):
            fetch_sql(_request(), guard=Guard(resolve=resolve))

    def test_the_request_does_not_show_the_password(self) -> None:
        assert "s3cret" not in repr(_request())


def _no_lookup(host: str, port: int) -> list[str]:
    raise AssertionError(f"{host} looked up")


class TestValues:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            (None, None),
            (True, True),
            (42, 42),
            (2.5, 2.5),
            (math.nan, None),
            (math.inf, None),
            (Decimal("10.50"), 10.5),
            (Decimal("2.00"), 2),
            (Decimal("-7"), -7),
            (Decimal("12345678901234567890123"), 1.2345678901234568e22),
            (Decimal("NaN"), None),
            (Decimal("Infinity"), None),
            (dt.date(2026, 3, 10), "2026-03-10"),
            (dt.datetime(2026, 3, 10, 12, 30, tzinfo=dt.UTC), "2026-03-10T12:30:00+00:00"),
            (dt.time(8, 15), "08:15:00"),
            (dt.timedelta(hours=1, seconds=30), 3630.0),
            (b"\x0a\xff", "0aff"),
            (memoryview(b"\x01"), "01"),
            (uuid.UUID(int=1), "00000000-0000-0000-0000-000000000001"),
            ({"a": [1, "x"]}, '{"a":[1,"x"]}'),
            ([1, 2], "[1,2]"),
            ("bell\x07 and \ud800", "bell\ufffd and \ufffd"),
        ],
    )
    def test_every_database_value_becomes_a_json_safe_value(self, value: Any, expected: Any) -> None:
        assert plain(value) == expected
        assert type(plain(value)) is type(expected)
