"""`tenantry serve` starts only on a database migrated to the code's revision."""

from __future__ import annotations

from tenantry.db.migrate import upgrade
from tests.servers import tenantry


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
