"""What an operator does from the command line: back up and restore (a SQLite copy taken while
writes go on; a pg_dump/pg_restore round trip), database files only their owner can read, and an
admin password that never appears in the process list."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import stat
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

from tenantry.app import create_app
from tenantry.auth.secrets import verify_password
from tenantry.db.models import PartnerUser
from tenantry.settings import Settings
from tests.conftest import PG_URL
from tests.servers import TENANTRY, free_port, live_server, tenantry

PASSWORD = "a password from a file"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def settings_for(url: str, data_dir: Path) -> Settings:
    return Settings(
        database_url=url,
        data_dir=data_dir,
        secret_key="operator-test-secret-" + "x" * 32,
        _env_file=None,  # type: ignore[call-arg]
    )


def new_partner(url: str, cwd: Path) -> dict[str, str]:
    (cwd / "password.txt").write_text(PASSWORD + "\n")
    created = tenantry(
        "partner", "create", "Backed Up", "--admin-email", f"admin-{uuid.uuid4().hex[:6]}@backup.test",
        "--admin-password-file", "password.txt", url=url, cwd=cwd,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    return {"Authorization": f"Bearer {json.loads(created.stdout)['api_key']}"}


@contextmanager
def serving(settings: Settings) -> Iterator[str]:
    """The app on its own database, served by uvicorn on loopback in a thread."""
    with live_server(create_app(settings)) as url:
        yield url


def client_ids(database: Path) -> set[int]:
    with sqlite3.connect(database) as conn:
        return {row[0] for row in conn.execute("SELECT id FROM clients")}


class TestSqliteBackup:
    def test_a_backup_taken_while_writes_go_on_restores_every_committed_row(self, tmp_path):
        live_dir, restored_dir = tmp_path / "live", tmp_path / "restored"
        live_dir.mkdir()
        restored_dir.mkdir()
        url = f"sqlite:///{live_dir / 'tenantry.db'}"
        assert tenantry("db", "upgrade", url=url, cwd=live_dir).returncode == 0
        key = new_partner(url, live_dir)
        committed: list[int] = []
        stop = threading.Event()

        # A long reader keeps every commit of the test in the -wal file (nothing can be moved past
        # its snapshot into the database file): a copy of the file alone would miss them all.
        reader = sqlite3.connect(live_dir / "tenantry.db", isolation_level=None)
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM clients").fetchone()
        with serving(settings_for(url, live_dir)) as base:

            def write() -> None:
                with httpx.Client(base_url=base, headers=key, timeout=60) as api:
                    n = 0
                    while not stop.is_set():
                        n += 1
                        response = api.post("/api/1/clients", json={"name": f"Client {n}"})
                        assert response.status_code == 201, response.text
                        committed.append(response.json()["id"])

            writer = threading.Thread(target=write)
            writer.start()
            try:
                while len(committed) < 20:
                    time.sleep(0.01)
                before = set(committed)
                result = tenantry("backup", str(tmp_path / "copy.db"), url=url, cwd=live_dir)
                during = set(committed)
                while len(committed) < len(during) + 5:
                    time.sleep(0.01)
            finally:
                stop.set()
                writer.join(timeout=60)
                reader.close()
        assert result.returncode == 0, result.stderr
        assert len(during) > len(before), "no write went on while the backup was taken"
        backup = tmp_path / "copy.db"
        assert mode(backup) == 0o600
        assert not Path(f"{backup}-wal").exists()  # one self-contained file

        # Restore: the server is stopped; the file goes back where the database lives.
        shutil.copy(backup, restored_dir / "tenantry.db")
        restored = client_ids(restored_dir / "tenantry.db")
        assert before <= restored <= set(committed)
        # One moment of the database: every client committed up to the last one it holds.
        assert restored == {i for i in committed if i <= max(restored)}
        restored_url = f"sqlite:///{restored_dir / 'tenantry.db'}"
        upgraded = tenantry("db", "upgrade", url=restored_url, cwd=restored_dir)
        assert upgraded.returncode == 0, upgraded.stderr
        with TestClient(create_app(settings_for(restored_url, restored_dir))) as http:
            listed = http.get("/api/1/clients", params={"limit": 1}, headers=key)
            assert listed.status_code == 200
            assert listed.json()["total"] == len(restored)
            assert (
                http.post("/api/1/clients", json={"name": "After the restore"}, headers=key).status_code
                == 201
            )

    def test_refusals_are_one_line_and_write_nothing(self, tmp_path):
        url = f"sqlite:///{tmp_path / 'tenantry.db'}"
        cases = [
            (("backup", "copy.db"), "sqlite:///missing.db", "there is no database at"),
            (("backup", "tenantry.db"), url, "cannot replace the database itself"),
            (("backup", "no/such/folder/copy.db"), url, "there is no folder"),
            (("backup", "copy.db"), "postgresql://nobody@127.0.0.1:1/none", "pg_dump -Fc"),
        ]
        assert tenantry("db", "upgrade", url=url, cwd=tmp_path).returncode == 0
        for args, database, reason in cases:
            result = tenantry(*args, url=database, cwd=tmp_path)
            assert result.returncode != 0
            assert reason in result.stderr
            assert len(result.stderr.strip().splitlines()) == 1
        assert sorted(p.name for p in tmp_path.iterdir()) == ["tenantry.db"]


@pytest.mark.postgres
@pytest.mark.skipif(not PG_URL, reason="needs TENANTRY_TEST_DATABASE_URL (PostgreSQL)")
def test_a_pg_dump_and_pg_restore_round_trip_gives_a_database_the_app_serves(
    http, partner, database_url, tmp_path
):
    for n in range(3):
        assert (
            http.post("/api/1/clients", json={"name": f"Kept {n}"}, headers=partner.headers).status_code
            == 201
        )
    source = make_url(database_url).set(drivername="postgresql")
    copy_name = f"tenantry_restore_{uuid.uuid4().hex[:12]}"
    target = source.set(database=copy_name)
    dump = tmp_path / "tenantry.dump"
    dumped = subprocess.run(
        ["pg_dump", "-Fc", "-f", str(dump), "--dbname", source.render_as_string(hide_password=False)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert dumped.returncode == 0, dumped.stderr
    admin = create_engine(source.set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{copy_name}"'))
    try:
        restored = subprocess.run(
            ["pg_restore", "--no-owner", "--dbname", target.render_as_string(hide_password=False), str(dump)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert restored.returncode == 0, restored.stderr
        url = target.render_as_string(hide_password=False)
        upgraded = tenantry("db", "upgrade", url=url, cwd=tmp_path)
        assert upgraded.returncode == 0, upgraded.stderr
        app = create_app(settings_for(url, tmp_path))
        with TestClient(app) as restored_http:
            names = [
                c["name"]
                for c in restored_http.get("/api/1/clients", headers=partner.headers).json()["items"]
            ]
            assert sorted(names) == ["Kept 0", "Kept 1", "Kept 2"]
            created = restored_http.post("/api/1/clients", json={"name": "New"}, headers=partner.headers)
            assert created.status_code == 201
        app.state.services.database.dispose()
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{copy_name}" WITH (FORCE)'))
        admin.dispose()


class TestPrivateFiles:
    def test_db_upgrade_creates_the_database_readable_by_its_owner_alone(self, tmp_path):
        result = tenantry("db", "upgrade", url="sqlite:///tenantry.db", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert mode(tmp_path / "tenantry.db") == 0o600

    def test_while_serving_the_wal_and_shm_files_are_private_too(self, tmp_path):
        url = "sqlite:///tenantry.db"
        assert tenantry("db", "upgrade", url=url, cwd=tmp_path).returncode == 0
        port = free_port()
        env = {**os.environ, "TENANTRY_DATABASE_URL": url, "TENANTRY_SECRET_KEY": "s" * 40}
        server = subprocess.Popen(
            [TENANTRY, "serve", "--no-worker", "--port", str(port)],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=lambda: os.umask(0o022),
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    # /healthz reads the database, which opens its -wal and -shm files.
                    assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline and server.poll() is None, "serve did not start"
                    time.sleep(0.1)
            files = {p.name: mode(p) for p in tmp_path.iterdir() if p.name.startswith("tenantry.db")}
        finally:
            server.terminate()
            server.wait(timeout=30)
        assert files == {"tenantry.db": 0o600, "tenantry.db-wal": 0o600, "tenantry.db-shm": 0o600}

    def test_the_generated_secret_key_file_is_private(self, tmp_path):
        key = Settings(data_dir=tmp_path, _env_file=None).ensure_secret_key()  # type: ignore[call-arg]
        path = tmp_path / ".tenantry-secret-key"
        assert path.read_text().strip() == key
        assert mode(path) == 0o600
        assert [p.name for p in tmp_path.iterdir()] == [".tenantry-secret-key"]

    def test_the_generated_secret_key_is_kept_and_never_replaced(self, tmp_path):
        first = Settings(data_dir=tmp_path, _env_file=None).ensure_secret_key()  # type: ignore[call-arg]
        again = Settings(data_dir=tmp_path, _env_file=None)  # type: ignore[call-arg]
        assert again.ensure_secret_key() == first
        assert again.resolved_secret_key == first

    def test_reading_the_secret_key_writes_no_file(self, tmp_path):
        settings = Settings(data_dir=tmp_path, _env_file=None)  # type: ignore[call-arg]
        with pytest.raises(RuntimeError, match="no secret key"):
            _ = settings.resolved_secret_key
        assert list(tmp_path.iterdir()) == []


class TestAdminPasswordFile:
    def test_the_password_is_the_first_line_of_the_file(self, database_url, database, tmp_path, db):
        (tmp_path / "pw").write_text(PASSWORD + "\r\nnot this line\n")
        result = tenantry(
            "partner", "create", "Filed", "--admin-email", "filed@partner.test",
            "--admin-password-file", "pw", url=database_url, cwd=tmp_path,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        out = json.loads(result.stdout)
        assert "admin_password" not in out
        assert PASSWORD not in result.stdout + result.stderr
        admin = db.get(PartnerUser, out["admin_user_id"])
        assert verify_password(PASSWORD, admin.password_hash)

    def test_a_dash_reads_it_from_standard_input(self, database_url, database, tmp_path, db):
        result = tenantry(
            "partner", "create", "Piped", "--admin-email", "piped@partner.test", "--admin-password-file", "-",
            url=database_url, cwd=tmp_path, stdin=PASSWORD + "\n",
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        admin = db.scalars(select(PartnerUser).where(PartnerUser.email == "piped@partner.test")).one()
        assert verify_password(PASSWORD, admin.password_hash)

    @pytest.mark.parametrize(
        ("args", "content", "reason"),
        [
            (["--admin-password-file", "missing"], None, "cannot read the admin password from missing"),
            (["--admin-password-file", "pw"], "\nsecond\n", "is empty"),
            (["--admin-password-file", "pw", "--admin-password", "x" * 12], PASSWORD, "not both"),
        ],
    )
    def test_bad_input_is_refused_in_one_line(self, database_url, database, tmp_path, args, content, reason):
        if content is not None:
            (tmp_path / "pw").write_text(content)
        result = tenantry(
            "partner",
            "create",
            "Bad",
            "--admin-email",
            "bad@partner.test",
            *args,
            url=database_url,
            cwd=tmp_path,
        )
        assert result.returncode != 0
        assert reason in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1

    def test_the_help_calls_the_file_the_safe_way(self, tmp_path):
        result = tenantry("partner", "create", "--help", url="sqlite:///unused.db", cwd=tmp_path)
        assert "--admin-password-file" in result.stdout
        assert "process list" in result.stdout and "the safe way" in result.stdout
