"""Load rows from a `sql` data source: one read-only query on PostgreSQL or MySQL/MariaDB.

The query is somebody's own text, run with credentials they gave us, against a server they
chose. What keeps that safe, from the outside in:

- the host goes through the outgoing-request guard (`tenantry.outbound`) like any URL: it is
  resolved once, a non-public address is refused unless `TENANTRY_OUTBOUND_ALLOW` opens it, and
  the driver connects to the checked address, never to the name (no second lookup);
- the text must be one statement starting with SELECT or WITH. This check is only the polite
  early answer: the read-only transaction is the real guard (a `WITH x AS (DELETE ...) SELECT`
  passes the check and is refused by the server), and the drivers are set up so that a second
  statement could not run anyway (PostgreSQL's extended protocol, PyMySQL without the
  multi-statements flag);
- client values (`{{client.prop.KEY}}`, ...) are bound parameters, never pasted into the text;
- the whole fetch has one deadline, `timeout` seconds: the server is told to stop the statement
  when the time left runs out, and a socket still busy a second later is cut here (a server that
  keeps quiet or drips its answer is not trusted to keep its promise);
- at most `max_rows` rows are read (rows are streamed, so a huge answer is cut off, not loaded);
- messages are plain sentences chosen here; a driver's own message is only passed on for errors
  in the query itself (a syntax error, an unknown column), which carry no password.

Values come back JSON-safe: Decimal as int or float, dates and times as ISO text, bytes as hex
text, JSON and arrays as JSON text, and text scrubbed like every other source's
(`tenantry.text.scrub`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
import os
import re
import socket
import struct
import threading
import time
import uuid
from collections.abc import Generator, Iterable, Iterator, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import httpcore
import psycopg
import pymysql
import pymysql.cursors
from psycopg import errors as pg_errors
from psycopg.abc import AdaptContext, Buffer
from psycopg.abc import Loader as LoaderProtocol
from psycopg.adapt import Loader
from psycopg.pq import Format
from pymysql.constants import ER

from tenantry.datasources.fetch import MAX_BYTES, MAX_COLUMNS, MAX_ROWS, TIMEOUT_SECONDS, FetchError, Row
from tenantry.datasources.placeholders import PLACEHOLDER, expand_sql
from tenantry.outbound import (
    ADDRESS_NOT_ALLOWED,
    COULD_NOT_CONNECT,
    TIMED_OUT,
    AddressRefused,
    Guard,
    IPAddress,
)
from tenantry.text import scrub, scrub_column_name

if TYPE_CHECKING:
    from tenantry.datasources.request import SourceRequest

ENGINES = ("postgresql", "mysql")
DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306}

WRITE_REFUSED = "The query tried to change data; sources are read-only."
WRONG_PASSWORD = "The database refused the user name or password."
NO_DATABASE_ACCESS = "The database user may not use that database, or it does not exist."
NOT_ONE_STATEMENT = "The query must be a single statement."
NOT_A_SELECT = "The query must be a SELECT (or start with WITH)."
EXECUTABLE_COMMENT = "The query may not hold an executable comment (/*! ... */): MySQL runs its text."
ADMIN_USER = (
    "The database user has rights beyond reading (superuser, replication, the server's files or "
    "programs, or ending other sessions): give the source a user that can only read."
)
PLACEHOLDER_QUOTED = (
    "A placeholder may not stand inside a string, a quoted name or a comment: write it as a value of "
    "its own (region = {{client.prop.region}}, not region = '{{client.prop.region}}')."
)

# A PostgreSQL role that a SELECT could use to act on the server itself, read-only transaction or
# not: a superuser (files, other sessions, settings), replication (slots that keep the server's
# log, filling its disk), or a member of the roles that read or write the server's files, run
# programs there or end other sessions. Anyone who may edit a source's query would act with them.
_PG_ADMIN_RIGHTS = """(
    SELECT r.rolsuper OR r.rolreplication OR EXISTS (
        SELECT FROM pg_roles AS g
        WHERE g.rolname IN (
            'pg_read_server_files', 'pg_write_server_files', 'pg_execute_server_program',
            'pg_signal_backend'
        ) AND pg_has_role(r.oid, g.oid, 'MEMBER')
    )
    FROM pg_roles AS r WHERE r.rolname = current_user
)"""

_FIRST_WORD = re.compile(r"[\s(]*([A-Za-z_]+)")
# MySQL writes a file on the database server with these, read-only transaction or not.
_INTO_FILE = re.compile(r"\bINTO\s+(OUTFILE|DUMPFILE)\b", re.IGNORECASE)

# A password file that does not exist (libpq warns on stderr about /dev/null): a name in this
# package's own folder, which nobody who can add a source can write to.
_NO_PASSFILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "no-such-pgpass")

# A driver's message about the query itself is shown, but not at any length.
_MAX_MESSAGE = 300


def fetch_sql(
    request: SourceRequest,
    *,
    guard: Guard,
    timeout: float = TIMEOUT_SECONDS,
    max_rows: int = MAX_ROWS,
) -> list[Row]:
    """Run the source's query read-only within `timeout` seconds and answer at most `max_rows`
    rows; every failure is a `FetchError` with a plain message and no secret in it."""
    settings = request.sql
    if not settings:
        raise FetchError("The source has no SQL settings.")
    engine = str(settings.get("engine") or "")
    if engine not in ENGINES:
        raise FetchError("The database engine must be postgresql or mysql.")
    host = str(settings.get("host") or "").strip()
    if not host or host.startswith("/") or any(c.isspace() or c in "/@?#=" for c in host):
        # A path would be a local socket to libpq; none of these belong in a host name.
        raise FetchError("The database host must be a host name or an address.")
    port = _port(settings.get("port"), engine)
    query = str(settings.get("query") or "")
    check_query(query, engine)
    text, params = expand_sql(query, request.context, style="pyformat")
    deadline = time.monotonic() + timeout
    addresses = checked_addresses(guard, host, port, deadline)
    connection = dict(
        host=host,
        port=port,
        database=str(settings.get("database") or ""),
        username=str(settings.get("username") or ""),
        password=str(settings.get("password") or ""),
    )
    if engine == "postgresql":
        return _fetch_postgresql(addresses, connection, text, params, timeout, deadline, max_rows)
    return _fetch_mysql(addresses, connection, text, params, timeout, deadline, max_rows)


def _port(value: Any, engine: str) -> int:
    if value is None or value == "":
        return DEFAULT_PORTS[engine]
    if (
        isinstance(value, bool)
        or not isinstance(value, int | str)
        or not (str(value).isascii() and str(value).isdigit())
    ):
        raise FetchError("The database port must be a number from 1 to 65535.")
    if not 1 <= int(value) <= 65535:
        raise FetchError("The database port must be a number from 1 to 65535.")
    return int(value)


# -- the query text ---------------------------------------------------------------------------


def check_query(query: str, engine: str) -> None:
    """Refuse, before connecting, what is not one SELECT statement: a second statement after a
    `;`, or a first word other than SELECT or WITH, or (MySQL) a file written on the server.
    Strings, quoted names and comments are skipped the way `engine` reads them, so a `;` inside a
    string is not a second statement; MySQL's executable comments (`/*! ... */`, whose text it
    runs) are refused."""
    code = _code_of(query, engine)
    for placeholder in PLACEHOLDER.finditer(query):
        if code[placeholder.start() : placeholder.end()] != placeholder.group(0):
            # MySQL's driver writes values into the text: inside quotes, a value would be code.
            raise FetchError(PLACEHOLDER_QUOTED)
    code = code.strip()
    while code.endswith(";"):
        code = code[:-1].rstrip()
    if not code:
        raise FetchError("The query is empty.")
    if ";" in code:
        raise FetchError(NOT_ONE_STATEMENT)
    first = _FIRST_WORD.match(code)
    if first is None or first.group(1).upper() not in ("SELECT", "WITH"):
        raise FetchError(NOT_A_SELECT)
    if _INTO_FILE.search(code):
        raise FetchError(WRITE_REFUSED)


def _code_of(query: str, engine: str) -> str:
    """The query with every string, quoted name and comment replaced by as many spaces: what is
    left stands where it stood in the query."""
    out: list[str] = []
    i, n = 0, len(query)
    mysql = engine == "mysql"
    while i < n:
        c = query[i]
        start = i
        if c in "'\"`" and (c != "`" or mysql):
            # MySQL escapes with a backslash inside strings; PostgreSQL only in E'...' strings.
            backslash = mysql or (c == "'" and i > 0 and query[i - 1] in "eE")
            i = _end_of_quoted(query, i, c, backslash)
        elif (query.startswith("--", i) and (not mysql or _mysql_dashes_comment(query, i))) or (
            mysql and c == "#"
        ):
            end = query.find("\n", i)
            i = n if end < 0 else end + 1
        elif query.startswith("/*", i):
            if mysql and (query.startswith("/*!", i) or query.startswith("/*M!", i)):
                raise FetchError(EXECUTABLE_COMMENT)
            i = _end_of_block_comment(query, i, nested=not mysql)
        elif c == "$" and not mysql and (tag := _dollar_tag(query, i)) is not None:
            end = query.find(tag, i + len(tag))
            if end < 0:
                raise FetchError("The query has a string that is never closed.")
            i = end + len(tag)
        else:
            out.append(c)
            i += 1
            continue
        out.append(" " * (i - start))
    return "".join(out)


def _mysql_dashes_comment(query: str, start: int) -> bool:
    """Whether the `--` at `start` begins a comment to MySQL and MariaDB: only when a space or a
    control character follows it, or nothing does (`1--1` is one minus minus one)."""
    after = start + 2
    return after >= len(query) or query[after] <= " "


def _end_of_quoted(query: str, start: int, quote: str, backslash: bool) -> int:
    i = start + 1
    while i < len(query):
        c = query[i]
        if backslash and c == "\\":
            i += 2
            continue
        if c == quote:
            if query.startswith(quote, i + 1):  # a doubled quote stands for itself
                i += 2
                continue
            return i + 1
        i += 1
    raise FetchError("The query has a string that is never closed.")


def _end_of_block_comment(query: str, start: int, *, nested: bool) -> int:
    depth, i = 0, start
    while i < len(query):
        if query.startswith("/*", i):
            depth = depth + 1 if nested or depth == 0 else depth
            i += 2
        elif query.startswith("*/", i):
            depth -= 1
            i += 2
            if depth == 0:
                return i
        else:
            i += 1
    raise FetchError("The query has a comment that is never closed.")


def _dollar_tag(query: str, start: int) -> str | None:
    """`$tag$` (or `$$`) opening a PostgreSQL dollar-quoted string at `start`, or None (`$1`)."""
    end = query.find("$", start + 1)
    if end < 0:
        return None
    tag = query[start + 1 : end]
    if tag and not (tag[0].isalpha() or tag[0] == "_"):
        return None
    if not all(c.isalnum() or c == "_" for c in tag):
        return None
    if start > 0 and (query[start - 1].isalnum() or query[start - 1] == "_"):
        return None  # part of a name such as a$b$
    return query[start : end + 1]


# -- the address ------------------------------------------------------------------------------


def checked_addresses(guard: Guard, host: str, port: int, deadline: float) -> list[IPAddress]:
    """The addresses of `host` the guard lets us connect to, in the guard's fixed words when
    none: the same policy, and the same one lookup, as every outgoing HTTP request."""
    try:
        return guard.addresses(host, port, deadline)
    except AddressRefused:
        raise FetchError(ADDRESS_NOT_ALLOWED) from None
    except httpcore.ConnectTimeout:
        raise FetchError(TIMED_OUT) from None
    except (httpcore.ConnectError, OSError):
        raise FetchError(COULD_NOT_CONNECT) from None


# -- PostgreSQL -------------------------------------------------------------------------------


def _fetch_postgresql(
    addresses: Sequence[IPAddress],
    connection: dict[str, Any],
    text: str,
    params: dict[str, Any],
    timeout: float,
    deadline: float,
    max_rows: int,
) -> list[Row]:
    conn = _connect_postgresql(addresses, connection, deadline)
    _lenient_times(conn)
    watchdog = _Watchdog(conn.pgconn.socket, deadline)
    try:
        with conn.cursor() as cursor:
            # The session's default too, so that not even a COMMIT inside the query (which the
            # extended protocol would refuse anyway) could leave a writable transaction.
            # And, in the same round trip, whether the user could do more than read (then the
            # query is not run at all).
            cursor.execute(
                "SELECT set_config('default_transaction_read_only', 'on', false),"
                " set_config('statement_timeout', %s, false), " + _PG_ADMIN_RIGHTS,
                (str(_milliseconds_left(deadline)),),
            )
            settings = cursor.fetchone()
            if settings is None or settings[2] is not False:
                raise FetchError(ADMIN_USER)
            conn.commit()
            conn.read_only = True  # every transaction from here starts with BEGIN READ ONLY
            # `stream` sends one statement over the extended protocol and reads the answer row
            # by row; closing it early (at the row cap) cancels the query on the server, which
            # must happen before the connection is closed.
            stream = cursor.stream(text, params)
            try:
                rows = _take(stream, max_rows)
                columns = [c.name for c in cursor.description or ()]
            finally:
                if isinstance(stream, Generator):
                    stream.close()
            return to_rows(columns, rows)
    except psycopg.Error as exc:
        if watchdog.fired:
            raise FetchError(_too_long(timeout)) from None
        raise FetchError(_postgresql_message(exc, timeout)) from None
    finally:
        watchdog.stop()
        conn.close()


# PostgreSQL's days and times that Python's cannot hold: `infinity`, `-infinity`, days before
# year 1 (`0044-03-15 BC`) or after 9999, and the time `24:00:00`.
_TIME_TYPES = ("date", "timestamp", "timestamptz", "time", "timetz", "interval")


def _lenient_times(conn: psycopg.Connection[Any]) -> None:
    """Read a day or a time Python cannot hold as the server's text of it, as a column of text
    would be, instead of failing the whole source."""
    for name in _TIME_TYPES:
        info = conn.adapters.types.get(name)
        if info is None:
            continue
        base = conn.adapters.get_loader(info.oid, Format.TEXT)
        if base is not None:
            conn.adapters.register_loader(info.oid, _as_text_when_out_of_range(base))


def _as_text_when_out_of_range(base: type[LoaderProtocol]) -> type[Loader]:
    class Lenient(Loader):
        # psycopg's own loaders are compiled classes that cannot be subclassed: this one holds one.
        def __init__(self, oid: int, context: AdaptContext | None = None) -> None:
            super().__init__(oid, context)
            self._inner = base(oid, context)

        def load(self, data: Buffer) -> Any:
            try:
                return self._inner.load(data)
            except (psycopg.DataError, ValueError, OverflowError):
                return bytes(data).decode("utf-8", "replace")

    return Lenient


def _connect_postgresql(
    addresses: Sequence[IPAddress], connection: dict[str, Any], deadline: float
) -> psycopg.Connection[Any]:
    failure = COULD_NOT_CONNECT
    for address in addresses:
        left = deadline - time.monotonic()
        if left <= 0:
            raise FetchError(TIMED_OUT)
        try:
            return psycopg.connect(
                # libpq connects to `hostaddr` (the checked address) and keeps `host` for TLS and
                # the password file lookup; it never resolves the name itself.
                host=connection["host"],
                hostaddr=str(address),
                port=connection["port"],
                dbname=connection["database"],
                user=connection["username"],
                password=connection["password"],
                # Never the server's own ~/.pgpass: the credentials are the source's, or none.
                passfile=_NO_PASSFILE,
                connect_timeout=max(2, math.ceil(left)),  # libpq: whole seconds, 2 at least
                application_name="tenantry",
                autocommit=False,
            )
        except psycopg.OperationalError as exc:
            message = str(exc)
            if "password" in message or "authentication" in message:
                raise FetchError(WRONG_PASSWORD) from None
            if "does not exist" in message and "database" in message:
                raise FetchError("The database does not exist.") from None
            if "does not exist" in message and "role" in message:
                raise FetchError(WRONG_PASSWORD) from None
            if "timeout" in message.lower():
                failure = TIMED_OUT
            continue
        except psycopg.Error:
            continue
    raise FetchError(failure)


def _postgresql_message(exc: psycopg.Error, timeout: float) -> str:
    if isinstance(exc, pg_errors.QueryCanceled):
        return _too_long(timeout)
    if isinstance(exc, pg_errors.ReadOnlySqlTransaction):
        return WRITE_REFUSED
    if isinstance(exc, pg_errors.InsufficientPrivilege):
        return "The database user may not read what the query asks for."
    if isinstance(exc, psycopg.OperationalError) and exc.diag.sqlstate is None:
        return COULD_NOT_CONNECT  # the connection broke off
    primary = exc.diag.message_primary or "the database refused it"
    return _query_failed(primary)


# -- MySQL and MariaDB ------------------------------------------------------------------------


# A grant on every database (`SHOW GRANTS`: the user's, and on MariaDB its active role's) that
# holds FILE, with which a SELECT reads any file the server may (`LOAD_FILE`): anyone who may edit
# the source's query would. (MySQL 8 does not list a role's privileges there.)
_GLOBAL_GRANT = re.compile(r"^GRANT (.+?) ON \*\.\* TO ", re.IGNORECASE)


def _reads_server_files(grants: Iterable[Sequence[Any]]) -> bool:
    for row in grants:
        found = _GLOBAL_GRANT.match(str(row[0]))
        if found is not None:
            privileges = {p.strip().upper() for p in found.group(1).split(",")}
            if privileges & {"FILE", "ALL", "ALL PRIVILEGES"}:
                return True
    return False


def _fetch_mysql(
    addresses: Sequence[IPAddress],
    connection: dict[str, Any],
    text: str,
    params: dict[str, Any],
    timeout: float,
    deadline: float,
    max_rows: int,
) -> list[Row]:
    conn = _connect_mysql(addresses, connection, timeout, deadline)
    watchdog = _Watchdog(conn._sock.fileno() if conn._sock else -1, deadline)
    try:
        with conn.cursor() as cursor:
            cursor.execute("SHOW GRANTS")
            if _reads_server_files(cursor.fetchall()):
                raise FetchError(ADMIN_USER)
            cursor.execute("SELECT VERSION()")
            version = str((cursor.fetchone() or ("",))[0])
            if "mariadb" in version.lower():
                cursor.execute("SET SESSION max_statement_time = %s", (_milliseconds_left(deadline) / 1000,))
            else:
                # MySQL's own limit, which stops SELECT statements only (the only kind run).
                cursor.execute("SET SESSION max_execution_time = %s", (_milliseconds_left(deadline),))
            cursor.execute("SET SESSION TRANSACTION READ ONLY")
            cursor.execute("START TRANSACTION READ ONLY")
        # Unbuffered: rows are read from the socket as they are taken, so a huge answer is cut
        # off at the cap instead of being loaded whole. The cursor is not closed on the way out
        # (that would read the rest of the answer): closing the connection ends the query.
        stream = conn.cursor(_Unbuffered)
        # pyformat with a dict always, so a doubled `%%` becomes `%` even without placeholders.
        stream.execute(text, params)
        rows = _take(_mysql_rows(stream), max_rows)
        columns = [c[0] for c in stream.description or ()]
        return to_rows(columns, rows)
    except pymysql.MySQLError as exc:
        if watchdog.fired:
            raise FetchError(_too_long(timeout)) from None
        raise FetchError(_mysql_message(exc, timeout)) from None
    except _GARBLED:
        raise FetchError(NOT_MYSQL) from None
    finally:
        watchdog.stop()
        # An answer left unread (at the row cap, or cut by the timeout) would otherwise be read
        # to its end when it is collected, from a closed socket by then.
        result = conn._result
        if result is not None:
            result.unbuffered_active = False
        # Already gone, maybe: a row cap or a timeout may leave the connection unusable.
        with contextlib.suppress(pymysql.MySQLError):
            conn.close()


class _Unbuffered(pymysql.cursors.SSCursor):
    """PyMySQL's unbuffered cursor, except that closing it (also when it is collected) lets go
    of the connection without reading the rest of the answer, which may be millions of rows:
    the connection is closed right after, and that ends the query on the server."""

    def close(self) -> None:
        if self._result is not None:
            # Or the answer, when it is collected, would read the rest from the closed socket.
            self._result.unbuffered_active = False
        self.connection = None

    __del__ = close


def _mysql_rows(cursor: _Unbuffered) -> Iterator[tuple[Any, ...]]:
    while batch := cursor.fetchmany(500):
        yield from batch


def _connect_mysql(
    addresses: Sequence[IPAddress], connection: dict[str, Any], timeout: float, deadline: float
) -> pymysql.Connection[Any]:
    failure = COULD_NOT_CONNECT
    for address in addresses:
        left = deadline - time.monotonic()
        if left <= 0:
            raise FetchError(TIMED_OUT)
        try:
            return pymysql.connect(
                host=str(address),  # the checked address, never the name
                port=connection["port"],
                user=connection["username"],
                password=connection["password"],
                database=connection["database"] or None,
                connect_timeout=max(1.0, left),
                # The server's own limit answers first; these catch a server that stops talking.
                read_timeout=timeout + _Watchdog.GRACE,
                write_timeout=timeout + _Watchdog.GRACE,
                charset="utf8mb4",
                autocommit=False,
                # Never CLIENT.MULTI_STATEMENTS (PyMySQL leaves it off unless asked): a second
                # statement is then a syntax error on the server.
                client_flag=0,
                local_infile=False,
            )
        except _GARBLED:
            continue  # a server on that address that does not speak MySQL's protocol
        except pymysql.MySQLError as exc:
            code = exc.args[0] if exc.args else None
            if code == ER.ACCESS_DENIED_ERROR:
                raise FetchError(WRONG_PASSWORD) from None
            if code == ER.DBACCESS_DENIED_ERROR:  # MySQL does not tell such a user whether it exists
                raise FetchError(NO_DATABASE_ACCESS) from None
            if code == ER.BAD_DB_ERROR:
                raise FetchError("The database does not exist.") from None
            if "timed out" in str(exc):
                failure = TIMED_OUT
            continue
    raise FetchError(failure)


# What PyMySQL's reading of packets raises on bytes that are not MySQL's protocol (a greeting of
# zeros, a packet cut short): another server's answer, or a hostile one's.
_GARBLED = (ValueError, IndexError, KeyError, struct.error, UnicodeDecodeError)
NOT_MYSQL = "The server's answer is not one MySQL or MariaDB sends."

# MariaDB: ER_STATEMENT_TIMEOUT (1969); MySQL: ER_QUERY_TIMEOUT (3024); 1317: query interrupted.
_MYSQL_TIMEOUTS = (1969, 3024, 1317)
_MYSQL_READ_ONLY = (1792, 1290)  # in a READ ONLY transaction; --read-only server
# The client lost the server (2013) or never reached it (2003, 2006).
_MYSQL_CONNECTION = (2003, 2006, 2013)


def _mysql_message(exc: pymysql.MySQLError, timeout: float) -> str:
    code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
    if code in _MYSQL_TIMEOUTS:
        return _too_long(timeout)
    if code in _MYSQL_READ_ONLY:
        return WRITE_REFUSED
    if code in _MYSQL_CONNECTION:
        return TIMED_OUT if "timed out" in str(exc) else COULD_NOT_CONNECT
    if code in (ER.TABLEACCESS_DENIED_ERROR, ER.COLUMNACCESS_DENIED_ERROR, ER.SPECIFIC_ACCESS_DENIED_ERROR):
        return "The database user may not read what the query asks for."
    detail = str(exc.args[1]) if len(exc.args) > 1 else "the database refused it"
    return _query_failed(detail)


# -- the deadline ----------------------------------------------------------------------------


def _milliseconds_left(deadline: float) -> int:
    """The statement's own timeout: what is left of the fetch's, so that connecting slowly does
    not lengthen the whole."""
    return max(1, int((deadline - time.monotonic()) * 1000))


class _Watchdog:
    """Cuts a connection's socket a moment after the deadline, should the server not have stopped
    the query by then. A statement timeout is the server's promise; a server that keeps quiet or
    drips its answer a byte at a time (it is somebody else's server) must not hold a worker past
    the fetch's deadline. The driver then fails on its next read."""

    GRACE = 1.0  # the server's own timeout answers first, with the better message

    def __init__(self, fileno: int, deadline: float) -> None:
        self._fileno, self._lock = fileno, threading.Lock()
        self._stopped = self.fired = False
        self._timer = threading.Timer(max(0.0, deadline - time.monotonic()) + self.GRACE, self._cut)
        self._timer.daemon = True
        self._timer.start()

    def _cut(self) -> None:
        with self._lock:
            # Once stopped the connection may be closed and its number reused by another socket.
            if self._stopped or self._fileno < 0:
                return
            self.fired = True
            with contextlib.suppress(OSError):
                sock = socket.socket(fileno=os.dup(self._fileno))
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                finally:
                    sock.close()

    def stop(self) -> None:
        """Disarm; call before the connection is closed."""
        with self._lock:
            self._stopped = True
        self._timer.cancel()


# -- rows -------------------------------------------------------------------------------------


def _take(rows: Iterable[Sequence[Any]], max_rows: int, max_bytes: int = MAX_BYTES) -> list[Sequence[Any]]:
    """At most `max_rows` rows, of at most `max_bytes` in all (as a URL source's answer is held
    to: text and bytes by their length, other values by their text, a number as 8); one more row
    is read to tell a full answer from a cut one."""
    taken: list[Sequence[Any]] = []
    size = 0
    for row in rows:
        if len(taken) == max_rows:
            raise FetchError(f"The query returned more than {max_rows:,} rows.")
        size += sum(_size(value) for value in row)
        if size > max_bytes:
            raise FetchError(f"The data is larger than the {max_bytes // (1024 * 1024)} MB limit.")
        taken.append(row)
    return taken


def _size(value: Any) -> int:
    if isinstance(value, str | bytes | bytearray | memoryview):
        return len(value)
    if value is None or isinstance(value, bool | int | float | Decimal | dt.date | dt.time | dt.timedelta):
        return 8
    return len(str(value))


def to_rows(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[Row]:
    """Rows as dicts of JSON-safe values, under column names scrubbed like every source's."""
    names = [scrub_column_name(str(c)) for c in columns]
    if len(names) > MAX_COLUMNS:
        raise FetchError(f"The query returns more than {MAX_COLUMNS} columns.")
    repeated = next((n for n in names if names.count(n) > 1 or n == ""), None)
    if repeated is not None:
        raise FetchError(
            f"The query returns two columns named {repeated!r}; give each column a name of its own (AS ...)."
            if repeated
            else "The query returns a column without a name; name it with AS."
        )
    return [{n: plain(v) for n, v in zip(names, row, strict=True)} for row in rows]


def plain(value: Any) -> Any:
    """A database value as text, a number, a boolean or null."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, float):
        # NaN and infinities are not JSON; a numeric column may hold them, a chart cannot.
        return value if math.isfinite(value) else None
    if isinstance(value, Decimal):
        if not value.is_finite():
            return None
        if value == value.to_integral_value() and abs(value) < 2**63:
            return int(value)
        number = float(value)
        return number if math.isfinite(number) else None
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dict | list | tuple):
        return scrub(json.dumps(value, default=str, ensure_ascii=False, separators=(",", ":")))
    return scrub(str(value))


def _too_long(timeout: float) -> str:
    seconds = f"{timeout:g}"
    return f"The query ran longer than {seconds} second{'' if seconds == '1' else 's'}."


def _query_failed(detail: str) -> str:
    detail = scrub(" ".join(detail.split()))
    if len(detail) > _MAX_MESSAGE:
        detail = detail[: _MAX_MESSAGE - 1] + "…"
    return f"The query failed: {detail.rstrip('.')}."
