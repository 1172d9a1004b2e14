"""`sql` sources against the real servers: PostgreSQL (TENANTRY_TEST_DATABASE_URL) and MariaDB
(TENANTRY_TEST_MYSQL_URL). Each engine gets a scratch database for this module, dropped after.

The injection table: whatever a query or a client's property tries, it ends in a plain
`FetchError` or in rows, and the source database is exactly as it was.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pymysql
import pytest

from tenantry.datasources import sql
from tenantry.datasources.fetch import FetchError
from tenantry.datasources.placeholders import Context
from tenantry.datasources.request import SourceRequest
from tenantry.datasources.sql import (
    ADMIN_USER,
    EXECUTABLE_COMMENT,
    NO_DATABASE_ACCESS,
    NOT_A_SELECT,
    NOT_ONE_STATEMENT,
    PLACEHOLDER_QUOTED,
    WRITE_REFUSED,
    WRONG_PASSWORD,
    fetch_sql,
)
from tenantry.outbound import AllowList, Guard
from tests.conftest import DatabaseServer, postgresql_role
from tests.content import make_client

# The servers are on loopback, which the guard refuses unless told otherwise, as an operator would.
LOOPBACK_ALLOWED = Guard(AllowList.parse("127.0.0.0/8, ::1"))
NASTY = "x'; DROP TABLE t; --"
READER_PASSWORD = "correct horse battery"


@dataclass
class Scratch:
    """A scratch database on one server, with table `t` and a function that writes."""

    server: DatabaseServer
    database: str
    # The source's user, which can only read (and write, which the read-only transaction refuses)
    # the scratch database: on PostgreSQL without a password (the server here trusts every
    # login), on MariaDB with READER_PASSWORD.
    reader: str

    @property
    def engine(self) -> str:
        return self.server.engine

    def request(self, query: str, *, context: Context | None = None, **settings: Any) -> SourceRequest:
        sql = {
            "engine": self.engine,
            "host": self.server.host,
            "port": self.server.port,
            "database": self.database,
            "username": self.reader,
            "password": "" if self.engine == "postgresql" else READER_PASSWORD,
            "query": query,
        } | settings
        return SourceRequest(kind="sql", url=None, format=None, sql=sql, context=context)

    def fetch(self, query: str, **kwargs: Any) -> list[dict[str, Any]]:
        context = kwargs.pop("context", None)
        return fetch_sql(self.request(query, context=context), guard=LOOPBACK_ALLOWED, **kwargs)

    def refusal(self, query: str, **kwargs: Any) -> str:
        with pytest.raises(FetchError) as caught:
            self.fetch(query, **kwargs)
        return str(caught.value)

    def admin(self, sql: str) -> list[tuple[Any, ...]]:
        """Run `sql` as the server's administrator in the scratch database, committed."""
        if self.engine == "postgresql":
            with psycopg.connect(**_pg_params(self.server, self.database), autocommit=True) as conn:
                cursor = conn.execute(sql)
                return list(cursor.fetchall()) if cursor.description else []
        with _mysql(self.server, self.database) as conn, conn.cursor() as cursor:
            cursor.execute(sql)
            rows = list(cursor.fetchall())
            conn.commit()
            return rows

    def state(self) -> list[tuple[Any, ...]]:
        """Everything a write could change: the rows of `t` and the tables there are."""
        tables = (
            "SELECT table_name FROM information_schema.tables WHERE table_schema = "
            + ("'public'" if self.engine == "postgresql" else "DATABASE()")
            + " ORDER BY 1"
        )
        return self.admin("SELECT id, name FROM t ORDER BY id") + self.admin(tables)


def _pg_params(server: DatabaseServer, database: str) -> dict[str, Any]:
    return {
        "host": server.host,
        "port": server.port,
        "user": server.username,
        "password": server.password,
        "dbname": database,
    }


def _mysql(server: DatabaseServer, database: str) -> pymysql.Connection[Any]:
    return pymysql.connect(
        host=server.host, port=server.port, user=server.username, password=server.password, database=database
    )


_TABLE = "CREATE TABLE t (id INTEGER PRIMARY KEY, name VARCHAR(100), amount DECIMAL(10, 2), day DATE, raw {})"
_ROWS = (
    "INSERT INTO t VALUES (1, 'alpha', 10.50, '2026-03-10', NULL),"
    " (2, 'x''; DROP TABLE t; --', 2.00, NULL, NULL), (3, 'gamma%', NULL, '2026-01-31', {})"
)


@pytest.fixture(scope="module", params=["postgresql", "mysql"])
def scratch(request: pytest.FixtureRequest) -> Iterator[Scratch]:
    server: DatabaseServer = request.getfixturevalue(f"{request.param}_server")
    name = f"tenantry_sql_{uuid.uuid4().hex[:12]}"
    if server.engine == "postgresql":
        with postgresql_role(server) as reader:
            with psycopg.connect(**_pg_params(server, server.database), autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{name}"')
            scratch = Scratch(server, name, reader=reader)
            try:
                scratch.admin(_TABLE.format("BYTEA"))
                scratch.admin(_ROWS.format("'\\x0aff'::bytea"))
                scratch.admin(
                    "CREATE FUNCTION wipe() RETURNS integer LANGUAGE sql AS 'DELETE FROM t; SELECT 0'"
                )
                # Every right on the data, so that what refuses a write is the read-only transaction.
                scratch.admin(f'GRANT ALL ON SCHEMA public TO "{reader}"')
                scratch.admin(f'GRANT ALL ON ALL TABLES IN SCHEMA public TO "{reader}"')
                yield scratch
            finally:  # before the role goes: its rights there go with the database
                with psycopg.connect(**_pg_params(server, server.database), autocommit=True) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        return
    with _mysql(server, server.database) as conn, conn.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE `{name}`")
        cursor.execute(f"CREATE USER '{name}'@'%' IDENTIFIED BY '{READER_PASSWORD}'")
        cursor.execute(f"GRANT ALL ON `{name}`.* TO '{name}'@'%'")
    scratch = Scratch(server, name, reader=name)
    try:
        scratch.admin(_TABLE.format("VARBINARY(10)"))
        scratch.admin(_ROWS.format("X'0AFF'"))
        scratch.admin(
            "CREATE FUNCTION wipe() RETURNS INTEGER MODIFIES SQL DATA BEGIN DELETE FROM t; RETURN 0; END"
        )
        yield scratch
    finally:
        with _mysql(server, server.database) as conn, conn.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
            cursor.execute(f"DROP USER IF EXISTS '{name}'@'%'")


def client(**properties: str) -> Context:
    return Context(client_id=7, external_id="acme-7", name="Acme", properties=properties)


class TestRows:
    def test_rows_come_back_as_json_safe_values_under_their_column_names(self, scratch: Scratch) -> None:
        rows = scratch.fetch("SELECT id, name, amount, day, raw FROM t ORDER BY id")
        assert rows == [
            {"id": 1, "name": "alpha", "amount": 10.5, "day": "2026-03-10", "raw": None},
            {"id": 2, "name": NASTY, "amount": 2, "day": None, "raw": None},
            {"id": 3, "name": "gamma%", "amount": None, "day": "2026-01-31", "raw": "0aff"},
        ]
        assert isinstance(rows[1]["amount"], int)  # an integral decimal is a whole number

    def test_a_literal_percent_sign_in_the_query_is_just_a_percent_sign(self, scratch: Scratch) -> None:
        assert scratch.fetch("SELECT id, '100%' AS p FROM t WHERE name LIKE 'g%'") == [{"id": 3, "p": "100%"}]

    def test_a_semicolon_inside_a_string_and_one_at_the_end_are_allowed(self, scratch: Scratch) -> None:
        assert scratch.fetch("SELECT ';' AS s;") == [{"s": ";"}]

    def test_client_values_are_bound_as_parameters(self, scratch: Scratch) -> None:
        rows = scratch.fetch(
            "SELECT id, {{client.external_id}} AS ext FROM t WHERE name = {{client.prop.who}}",
            context=client(who="alpha"),
        )
        assert rows == [{"id": 1, "ext": "acme-7"}]

    def test_a_missing_property_fails_naming_it(self, scratch: Scratch) -> None:
        message = scratch.refusal("SELECT id FROM t WHERE name = {{client.prop.region}}", context=client())
        assert message == "The client has no property 'region'."

    def test_two_columns_with_one_name_are_refused_with_a_hint(self, scratch: Scratch) -> None:
        assert "two columns named 'a'" in scratch.refusal("SELECT 1 AS a, 2 AS a")

    def test_a_mistake_in_the_query_is_reported_in_the_servers_words(self, scratch: Scratch) -> None:
        message = scratch.refusal("SELECT nope FROM t")
        assert message.startswith("The query failed: ") and "nope" in message


class TestInjection:
    def test_a_property_value_that_looks_like_sql_is_only_data(self, scratch: Scratch) -> None:
        before = scratch.state()
        rows = scratch.fetch("SELECT id FROM t WHERE name = {{client.prop.who}}", context=client(who=NASTY))
        assert rows == [{"id": 2}]  # filtered by the literal text, nothing else
        assert scratch.state() == before

    @pytest.mark.parametrize(
        "query",
        [
            "INSERT INTO t (id, name) VALUES (9, 'new')",
            "UPDATE t SET name = 'changed'",
            "DELETE FROM t",
            "DROP TABLE t",
            "CREATE TABLE u (id INTEGER)",
            "  /* looks harmless */ delete from t",
        ],
    )
    def test_a_statement_that_writes_is_refused_and_changes_nothing(
        self, scratch: Scratch, query: str
    ) -> None:
        before = scratch.state()
        assert scratch.refusal(query) == NOT_A_SELECT
        assert scratch.state() == before

    def test_a_second_statement_is_refused_and_changes_nothing(self, scratch: Scratch) -> None:
        before = scratch.state()
        assert scratch.refusal("SELECT 1; DELETE FROM t") == NOT_ONE_STATEMENT
        assert scratch.refusal("SELECT 1 AS a; DROP TABLE t; --") == NOT_ONE_STATEMENT
        assert scratch.state() == before

    def test_past_the_check_a_second_statement_still_cannot_run(
        self, scratch: Scratch, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # The check is the polite answer; the drivers must refuse two statements on their own.
        monkeypatch.setattr(sql, "check_query", lambda query, engine: None)
        before = scratch.state()
        message = scratch.refusal("SELECT 1 AS a; DELETE FROM t")
        assert message.startswith("The query failed: ")
        assert scratch.state() == before

    def test_a_select_that_writes_through_a_function_is_stopped_by_the_read_only_transaction(
        self, scratch: Scratch
    ) -> None:
        before = scratch.state()
        assert scratch.refusal("SELECT wipe() AS w") == WRITE_REFUSED
        assert scratch.state() == before

    def test_a_data_modifying_cte_is_stopped_by_the_read_only_transaction(self, scratch: Scratch) -> None:
        if scratch.engine != "postgresql":
            pytest.skip("MySQL and MariaDB have no data-modifying WITH")
        before = scratch.state()
        assert (
            scratch.refusal("WITH gone AS (DELETE FROM t RETURNING id) SELECT id FROM gone") == WRITE_REFUSED
        )
        assert scratch.refusal("SELECT id FROM t FOR UPDATE") == WRITE_REFUSED
        assert scratch.state() == before

    def test_writing_a_file_on_the_server_is_refused(self, scratch: Scratch) -> None:
        assert scratch.refusal("SELECT id INTO OUTFILE '/tmp/tenantry-out' FROM t") == WRITE_REFUSED

    @pytest.mark.parametrize(
        ("query", "message"),
        [
            # MySQL and MariaDB run the text of an executable comment...
            ("SELECT 1 AS one /*!INTO OUTFILE '{path}' */", EXECUTABLE_COMMENT),
            ("SELECT 1 AS one /*!50000 INTO DUMPFILE '{path}' */", EXECUTABLE_COMMENT),
            ("SELECT 1 AS one /*M!100000 INTO OUTFILE '{path}' */", EXECUTABLE_COMMENT),
            # ... and read `--` with no space after it as two minus signs.
            ("SELECT 1--1 AS one INTO OUTFILE '{path}'", WRITE_REFUSED),
        ],
    )
    def test_a_file_write_hidden_where_mysql_still_reads_it_is_refused_and_writes_nothing(
        self, scratch: Scratch, query: str, message: str
    ) -> None:
        if scratch.engine != "mysql":
            pytest.skip("executable comments and `--` without a space are MySQL's and MariaDB's")
        path = Path(f"/tmp/tenantry-hidden-{uuid.uuid4().hex}")
        try:
            assert scratch.refusal(query.format(path=path)) == message
            assert not path.exists()
        finally:
            path.unlink(missing_ok=True)

    @pytest.mark.parametrize(
        ("query", "value"),
        [
            # A partner used to other tools writes the placeholder inside quotes, or in a comment;
            # MySQL's driver writes values into the text, where these would be code.
            ("SELECT id FROM t WHERE name = '{{client.prop.who}}'", " OR 1=1 -- "),
            ("SELECT id FROM t WHERE name = 'alpha' /* {{client.prop.who}} */", "*/ OR 1=1 /*"),
            ("SELECT id FROM t WHERE name = 'alpha' -- {{client.prop.who}}\n", "x"),
        ],
    )
    def test_a_placeholder_inside_a_string_or_a_comment_is_refused_before_connecting(
        self, scratch: Scratch, query: str, value: str
    ) -> None:
        assert scratch.refusal(query, context=client(who=value)) == PLACEHOLDER_QUOTED

    def test_a_placeholder_beside_a_string_is_still_a_bound_value(self, scratch: Scratch) -> None:
        query = "SELECT id FROM t WHERE name = {{client.prop.who}} OR name = '{{not.a.placeholder}}'"
        assert scratch.fetch(query, context=client(who="alpha")) == [{"id": 1}]


class TestLimits:
    def test_a_query_past_the_timeout_is_stopped_by_the_server(self, scratch: Scratch) -> None:
        sleep = "SELECT pg_sleep(20) AS s" if scratch.engine == "postgresql" else "SELECT SLEEP(20) AS s"
        started = time.monotonic()
        assert scratch.refusal(sleep, timeout=1) == "The query ran longer than 1 second."
        assert time.monotonic() - started < 5

    def test_more_rows_than_the_cap_fail_the_fetch(self, scratch: Scratch) -> None:
        assert scratch.refusal("SELECT id FROM t", max_rows=2) == "The query returned more than 2 rows."
        assert len(scratch.fetch("SELECT id FROM t", max_rows=3)) == 3

    def test_a_huge_answer_is_cut_off_at_the_cap_without_being_loaded(self, scratch: Scratch) -> None:
        huge = (
            # Each function is materialised alone (10,000 rows); their product only as it is read.
            "SELECT a.x FROM generate_series(1, 10000) AS a(x), generate_series(1, 10000) AS b(y)"
            if scratch.engine == "postgresql"
            else "SELECT a.table_name FROM information_schema.columns a, information_schema.columns b,"
            " information_schema.columns c"
        )
        started = time.monotonic()
        assert scratch.refusal(huge, max_rows=1000) == "The query returned more than 1,000 rows."
        assert time.monotonic() - started < 5

    def test_an_answer_past_the_size_cap_fails_the_fetch_as_a_url_sources_does(
        self, scratch: Scratch
    ) -> None:
        # 12 rows of 1 MiB: well under the row cap, past the 5 MB a URL source's answer is held to.
        mib = 1024 * 1024
        query = (
            f"SELECT g AS n, repeat('x', {mib}) AS wide FROM generate_series(1, 12) AS g"
            if scratch.engine == "postgresql"
            else f"WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < 12)"
            f" SELECT n, REPEAT('x', {mib}) AS wide FROM g"
        )
        assert scratch.refusal(query) == "The data is larger than the 5 MB limit."
        assert len(scratch.fetch(query.replace("12", "4"))) == 4

    @pytest.mark.parametrize(
        ("expression", "as_text"),
        [
            ("'infinity'::date", "infinity"),
            ("'-infinity'::timestamptz", "-infinity"),
            ("'infinity'::timestamp", "infinity"),
            ("'0044-03-15 BC'::date", "0044-03-15 BC"),
            ("'12000-01-01'::date", "12000-01-01"),
            ("'24:00:00'::time", "24:00:00"),
        ],
    )
    def test_a_day_or_time_python_cannot_hold_is_read_as_its_text(
        self, scratch: Scratch, expression: str, as_text: str
    ) -> None:
        # `infinity` is the usual open end of a validity range: the source still loads.
        if scratch.engine != "postgresql":
            pytest.skip("PostgreSQL's own day and time values")
        rows = scratch.fetch(f"SELECT 1 AS id, {expression} AS valid_to, DATE '2026-03-10' AS day")
        assert rows == [{"id": 1, "valid_to": as_text, "day": "2026-03-10"}]


class TestConnecting:
    def test_a_wrong_password_is_reported_plainly_without_the_password(self, scratch: Scratch) -> None:
        if scratch.engine == "postgresql":
            # This server trusts every login from loopback: an unknown user is the refusal it makes.
            request = scratch.request("SELECT 1 AS a", username="nobody_here", password="hunter2-secret")
        else:
            request = scratch.request("SELECT 1 AS a", username=scratch.reader, password="hunter2-secret")
        with pytest.raises(FetchError) as caught:
            fetch_sql(request, guard=LOOPBACK_ALLOWED)
        assert str(caught.value) == WRONG_PASSWORD
        assert "hunter2" not in repr(caught.value)

    def test_the_right_password_works(self, scratch: Scratch) -> None:
        if scratch.engine == "postgresql":
            pytest.skip("this PostgreSQL server does not check passwords")
        request = scratch.request("SELECT 1 AS a", username=scratch.reader, password=READER_PASSWORD)
        assert fetch_sql(request, guard=LOOPBACK_ALLOWED) == [{"a": 1}]

    def test_an_unknown_database_is_named_as_such(self, scratch: Scratch) -> None:
        # To the server's administrator (MySQL tells another user only that it may not use it).
        admin = {"username": scratch.server.username, "password": scratch.server.password}
        request = scratch.request("SELECT 1 AS a", database="no_such_database_here", **admin)
        with pytest.raises(FetchError, match=r"^The database does not exist\.$"):
            fetch_sql(request, guard=LOOPBACK_ALLOWED)

    def test_a_database_the_user_may_not_use_is_named_as_such_on_mysql(self, scratch: Scratch) -> None:
        if scratch.engine == "postgresql":
            pytest.skip("PostgreSQL names an unknown database to every user")
        request = scratch.request("SELECT 1 AS a", database="no_such_database_here")
        with pytest.raises(FetchError) as caught:
            fetch_sql(request, guard=LOOPBACK_ALLOWED)
        assert str(caught.value) == NO_DATABASE_ACCESS

    def test_a_loopback_host_is_refused_by_the_guard_without_connecting(self, scratch: Scratch) -> None:
        for host in ("127.0.0.1", "127.1", "2130706433", "localhost"):
            with pytest.raises(FetchError, match=r"^address not allowed$"):
                fetch_sql(scratch.request("SELECT 1 AS a", host=host), guard=Guard())

    def test_a_name_is_resolved_once_by_the_guard_and_the_checked_address_is_dialled(
        self, scratch: Scratch
    ) -> None:
        looked_up: list[str] = []

        def resolve(host: str, port: int) -> list[str]:
            looked_up.append(host)
            return [scratch.server.host]

        # No resolver but the guard's knows this name: the driver can only have dialled the address.
        guard = Guard(AllowList.parse("127.0.0.0/8"), resolve=resolve)
        request = scratch.request("SELECT 1 AS a", host="db.tenantry-test.invalid")
        assert fetch_sql(request, guard=guard) == [{"a": 1}]
        assert looked_up == ["db.tenantry-test.invalid"]

    def test_a_closed_port_reads_could_not_connect(self, scratch: Scratch) -> None:
        with pytest.raises(FetchError, match=r"^could not connect$"):
            fetch_sql(scratch.request("SELECT 1 AS a", port=1), guard=LOOPBACK_ALLOWED)


# (the rights of the source's PostgreSQL user, whether a source may use it)
PG_RIGHTS = [
    pytest.param(None, False, id="the server's superuser is refused"),
    pytest.param("REPLICATION", False, id="a user with replication is refused"),
    pytest.param("IN ROLE pg_read_server_files", False, id="a reader of the server's files is refused"),
    pytest.param("IN ROLE pg_write_server_files", False, id="a writer of the server's files is refused"),
    pytest.param("IN ROLE pg_execute_server_program", False, id="one that runs programs is refused"),
    pytest.param("IN ROLE pg_signal_backend", False, id="one that ends other sessions is refused"),
    pytest.param("IN ROLE pg_monitor", True, id="a reader of the server's statistics may read"),
    pytest.param("", True, id="a user that can only read may read"),
]


class TestPostgresqlUsersThatCouldDoMoreThanRead:
    """Anyone who may edit a source's query acts with its stored user: one that could act on the
    server itself (read its files, end sessions, keep replication slots) is refused before the
    query runs."""

    @pytest.mark.parametrize(("rights", "allowed"), PG_RIGHTS)
    def test_a_user_with_rights_beyond_reading_is_refused_before_the_query_runs(
        self, postgresql_server: DatabaseServer, rights: str | None, allowed: bool
    ) -> None:
        def fetch(username: str) -> list[dict[str, Any]]:
            settings = {
                "engine": "postgresql",
                "host": postgresql_server.host,
                "port": postgresql_server.port,
                "database": postgresql_server.database,
                "username": username,
                "password": postgresql_server.password,
                "query": "SELECT 1 / (SELECT count(*)::int - 1 FROM (VALUES (1)) AS v(x)) AS never",
            }
            return fetch_sql(
                SourceRequest(kind="sql", url=None, format=None, sql=settings), guard=LOOPBACK_ALLOWED
            )

        def outcome(username: str) -> str:
            try:
                return repr(fetch(username))
            except FetchError as refusal:
                return str(refusal)

        if rights is None:
            answer = outcome(postgresql_server.username)
        else:
            with postgresql_role(postgresql_server, rights) as username:
                answer = outcome(username)
        # The query divides by zero: a user that may read sees the server's error, one that may not
        # sees the refusal, never the query's outcome.
        if allowed:
            assert answer.startswith("The query failed: ") and "division by zero" in answer
        else:
            assert answer == ADMIN_USER


# (what the source's MariaDB/MySQL user was granted, whether a source may use it)
MYSQL_RIGHTS = [
    pytest.param(None, False, id="the server's administrator is refused"),
    pytest.param("FILE ON *.*", False, id="a user that reads the server's files is refused"),
    pytest.param("role:FILE ON *.*", False, id="one whose default role reads them is refused"),
    pytest.param("SELECT ON *.*", True, id="a user that reads every database may read"),
]


class TestMysqlUsersThatCouldDoMoreThanRead:
    """With the FILE privilege, a SELECT reads any file the server may (`LOAD_FILE`): such a user
    is refused before the query runs."""

    @pytest.mark.parametrize(("granted", "allowed"), MYSQL_RIGHTS)
    def test_a_user_that_reads_the_servers_files_is_refused_before_the_query_runs(
        self, mysql_server: DatabaseServer, granted: str | None, allowed: bool
    ) -> None:
        def outcome(username: str, password: str) -> str:
            settings = {
                "engine": "mysql",
                "host": mysql_server.host,
                "port": mysql_server.port,
                "database": mysql_server.database,
                "username": username,
                "password": password,
                "query": "SELECT LOAD_FILE('/etc/hostname') IS NOT NULL AS read_a_file",
            }
            request = SourceRequest(kind="sql", url=None, format=None, sql=settings)
            try:
                return repr(fetch_sql(request, guard=LOOPBACK_ALLOWED))
            except FetchError as refusal:
                return str(refusal)

        if granted is None:
            answer = outcome(mysql_server.username, mysql_server.password)
        else:
            name = f"tenantry_{uuid.uuid4().hex[:12]}"
            with _mysql(mysql_server, mysql_server.database) as conn, conn.cursor() as cursor:
                cursor.execute(f"CREATE USER '{name}'@'%' IDENTIFIED BY '{READER_PASSWORD}'")
                cursor.execute(f"GRANT SELECT ON `{mysql_server.database}`.* TO '{name}'@'%'")
                if granted.startswith("role:"):  # through a role the user has by default
                    cursor.execute(f"CREATE ROLE {name}_role")
                    cursor.execute(f"GRANT {granted.removeprefix('role:')} TO {name}_role")
                    cursor.execute(f"GRANT {name}_role TO '{name}'@'%'")
                    cursor.execute(f"SET DEFAULT ROLE {name}_role FOR '{name}'@'%'")
                else:
                    cursor.execute(f"GRANT {granted} TO '{name}'@'%'")
            try:
                answer = outcome(name, READER_PASSWORD)
            finally:
                with _mysql(mysql_server, mysql_server.database) as conn, conn.cursor() as cursor:
                    cursor.execute(f"DROP USER IF EXISTS '{name}'@'%'")
                    cursor.execute(f"DROP ROLE IF EXISTS {name}_role")
        # A user without FILE may run the query, and reads no file with it.
        assert answer == ("[{'read_a_file': 0}]" if allowed else ADMIN_USER)


class TestRefreshedByTheWorker:
    """A stored source, end to end: created through the API, fetched by the worker with the
    client's properties, its rows served; a failing query keeps the last good rows."""

    def create(self, http, partner, scratch: Scratch, client_id: int, query: str) -> int:  # type: ignore[no-untyped-def]
        body = {
            "name": "Orders",
            "kind": "sql",
            "engine": scratch.engine,
            "host": scratch.server.host,
            "port": scratch.server.port,
            "database": scratch.database,
            "query": query,
        }
        if scratch.engine == "mysql":
            body |= {"username": scratch.reader, "password": READER_PASSWORD}
        else:
            body |= {"username": scratch.reader}
        response = http.post(f"/api/1/clients/{client_id}/datasources", json=body, headers=partner.headers)
        assert response.status_code == 201, response.text
        return int(response.json()["id"])

    def test_a_clients_source_is_filtered_by_its_property_and_a_write_later_keeps_the_rows(  # type: ignore[no-untyped-def]
        self, http, partner, worker, scratch: Scratch
    ) -> None:
        before = scratch.state()
        client_id = make_client(http, partner)
        response = http.put(
            f"/api/1/clients/{client_id}/properties", json={"who": NASTY}, headers=partner.headers
        )
        assert response.status_code == 200, response.text
        source_id = self.create(
            http, partner, scratch, client_id, "SELECT id, name FROM t WHERE name = {{client.prop.who}}"
        )
        worker.run_once()
        source = http.get(f"/api/1/datasources/{source_id}", headers=partner.headers).json()
        assert source["last_error"] is None
        rows = http.get(f"/api/1/datasources/{source_id}/rows", headers=partner.headers).json()
        assert rows["items"] == [{"id": 2, "name": NASTY}]

        response = http.patch(
            f"/api/1/datasources/{source_id}", json={"query": "SELECT wipe() AS w"}, headers=partner.headers
        )
        assert response.status_code == 200, response.text
        http.post(f"/api/1/datasources/{source_id}/refresh", headers=partner.headers)
        worker.run_once()
        source = http.get(f"/api/1/datasources/{source_id}", headers=partner.headers).json()
        assert source["last_error"] == WRITE_REFUSED
        rows = http.get(f"/api/1/datasources/{source_id}/rows", headers=partner.headers).json()
        assert rows["items"] == [{"id": 2, "name": NASTY}]
        assert scratch.state() == before
