"""The engine's budget of connections and time-outs comes from the settings."""

from __future__ import annotations


def test_the_connection_budget_of_a_process_comes_from_the_settings(tmp_path):
    from tenantry.app import admission_limit
    from tenantry.db.session import database_from_settings
    from tenantry.settings import Settings

    settings = Settings(
        database_url=f"sqlite:///{tmp_path}/budget.db",
        db_pool_size=4,
        db_max_overflow=2,
        _env_file=None,  # type: ignore[call-arg]
    )
    database = database_from_settings(settings)
    try:
        assert database.capacity == 6
        assert database.engine.pool.size() == 4  # type: ignore[attr-defined]
        # Half the connections left after the two kept for /healthz and /metrics.
        assert admission_limit(settings, database) == 2
        assert admission_limit(settings.model_copy(update={"max_concurrent_requests": 7}), database) == 7
    finally:
        database.dispose()
