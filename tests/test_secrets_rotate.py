"""`tenantry secrets rotate` (SPEC §14): with a new TENANTRY_ENCRYPTION_KEY and the old one in
TENANTRY_ENCRYPTION_OLD_KEYS, every data source's secrets are sealed again under the new key, so
the old one can be retired; a second run changes nothing; secrets no key opens are named."""

from __future__ import annotations

import base64
import json
import os

from sqlalchemy import select

from tenantry.datasources.request import open_secrets
from tenantry.db.dashboard_models import DataSource
from tenantry.db.template_models import Template
from tenantry.vault import Vault, new_key, parse_key
from tests.servers import tenantry
from tests.templates.test_api import CRM

SECRETS = {"auth.token": "tok-rotate-me"}


def _add_sources(database, sealed: list[str | None]) -> list[int]:  # type: ignore[no-untyped-def]
    from tenantry.db.models import Partner

    ids = []
    with database.session(write=True) as db:
        partner = db.scalars(select(Partner)).first()
        assert partner is not None
        for text in sealed:
            source = DataSource(
                partner_id=partner.id,
                name="S",
                kind="url",
                url="https://example.com/a.csv",
                format="csv",
                config={"method": "GET", "headers": [], "auth": {"type": "bearer"}},
                secrets=text,
                rows=[],
                row_count=0,
                version="",
                refresh_fail_count=0,
                created_at=partner.created_at,
                updated_at=partner.created_at,
            )
            db.add(source)
            db.flush()
            ids.append(source.id)
        db.commit()
    return ids


def _sealed(database, ids: list[int]) -> list[str | None]:  # type: ignore[no-untyped-def]
    with database.session() as db:
        return [db.get(DataSource, i).secrets for i in ids]  # type: ignore[union-attr]


def test_rotation_moves_every_secret_to_the_new_key_and_running_again_changes_nothing(
    database_url, database, partner, tmp_path
):
    old, new = new_key(), new_key()
    sealed = Vault(parse_key(old)).seal(json.dumps(SECRETS))
    ids = _add_sources(database, [sealed, Vault(parse_key(new)).seal(json.dumps(SECRETS)), None])
    env = {"TENANTRY_ENCRYPTION_KEY": new, "TENANTRY_ENCRYPTION_OLD_KEYS": old}
    first = tenantry("secrets", "rotate", url=database_url, cwd=tmp_path, env=env)
    assert first.returncode == 0, first.stderr
    assert "re-encrypted the secrets of 1 data source(s)" in first.stderr
    assert "1 already used it" in first.stderr
    after = _sealed(database, ids)
    only_new = Vault(parse_key(new))
    assert [json.loads(only_new.open(text)) for text in after[:2] if text] == [SECRETS, SECRETS]
    assert after[2] is None
    again = tenantry("secrets", "rotate", url=database_url, cwd=tmp_path, env=env)
    assert again.returncode == 0, again.stderr
    assert "re-encrypted the secrets of 0 data source(s)" in again.stderr
    assert _sealed(database, ids) == after
    assert "tok-rotate-me" not in first.stderr + first.stdout + again.stderr + again.stdout


def test_secrets_no_configured_key_opens_are_named_and_left_as_they_are(
    database_url, database, partner, tmp_path
):
    lost = Vault(os.urandom(32)).seal(json.dumps(SECRETS))
    ids = _add_sources(database, [lost])
    env = {"TENANTRY_ENCRYPTION_KEY": new_key()}
    result = tenantry("secrets", "rotate", url=database_url, cwd=tmp_path, env=env)
    assert result.returncode != 0
    assert f"ids {ids[0]}" in result.stderr
    assert _sealed(database, ids) == [lost]


def test_without_a_configured_key_the_generated_one_is_used(database_url, database, partner, tmp_path):
    result = tenantry(
        "secrets", "rotate", url=database_url, cwd=tmp_path, env={"TENANTRY_DATA_DIR": str(tmp_path)}
    )
    assert result.returncode == 0, result.stderr
    key_file = tmp_path / "encryption.key"
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    assert len(base64.urlsafe_b64decode(key_file.read_text().strip())) == 32


# The partner's own source, with the template source's secrets (no template reference or placeholder).
URL_SOURCE = {**{k: v for k, v in CRM.items() if k != "ref"}, "url": "https://crm.example.test/deals.json"}


def test_rotation_reseals_the_secrets_a_template_keeps_so_the_old_key_can_be_retired(
    http, partner, app, database, database_url, settings, tmp_path
):
    # The app seals with the key it generated in its data folder: that is the "old" key.
    made = http.post(
        "/api/1/templates",
        json={
            "name": "Starter",
            "datasources": [CRM],
            "dashboards": [{"name": "Overview", "klips": []}],
        },
        headers=partner.headers,
    )
    assert made.status_code == 201, made.text
    source = http.post("/api/1/partner/datasources", json=URL_SOURCE, headers=partner.headers)
    assert source.status_code == 201, source.text
    old = (tmp_path / "encryption.key").read_text().strip()
    new = new_key()

    rotated = tenantry(
        "secrets", "rotate",
        url=database_url, cwd=tmp_path,
        env={"TENANTRY_ENCRYPTION_KEY": new, "TENANTRY_ENCRYPTION_OLD_KEYS": old},
    )  # fmt: skip
    assert rotated.returncode == 0, rotated.stderr

    # The old key is now removed, as the README says: only the new one is configured.
    only_new = Vault(parse_key(new))
    with database.session() as db:
        stored = db.get(DataSource, source.json()["id"])
        assert open_secrets(stored.secrets, only_new)["auth.token"] == "bearer-secret"
        body = db.get(Template, made.json()["id"]).body
    # Every later deployment copies these as they are: they must open with the new key alone.
    kept = open_secrets(body["datasources"][0]["secrets"], only_new)
    assert kept["auth.token"] == "bearer-secret" and kept["headers"]["X-Api-Key"] == "top-secret"
    assert "re-encrypted the kept secrets of 1 template(s)" in rotated.stderr


def test_rotation_reseals_the_answers_kept_for_idempotency_keys_so_a_replay_survives_the_old_keys_retirement(
    http, partner, database, database_url, settings, clock, tmp_path
):
    from fastapi.testclient import TestClient

    from tenantry.app import create_app

    headers = {**partner.headers, "Idempotency-Key": "mint-before-rotation"}
    created = http.post("/api/1/me/api-keys", json={"name": "ci"}, headers=headers)
    assert created.status_code == 201, created.text
    old = (tmp_path / "encryption.key").read_text().strip()
    new = new_key()
    env = {"TENANTRY_ENCRYPTION_KEY": new, "TENANTRY_ENCRYPTION_OLD_KEYS": old}
    rotated = tenantry("secrets", "rotate", url=database_url, cwd=tmp_path, env=env)
    assert rotated.returncode == 0, rotated.stderr
    assert "re-encrypted 1 answer(s) kept for Idempotency-Key replays" in rotated.stderr
    assert created.json()["secret"] not in rotated.stderr + rotated.stdout
    again = tenantry("secrets", "rotate", url=database_url, cwd=tmp_path, env=env)
    assert "Idempotency-Key" not in again.stderr  # nothing left to do

    # The old key retired: a server that has only the new one still replays the answer.
    retired = settings.model_copy(update={"encryption_key": new, "encryption_old_keys": ""})
    with TestClient(create_app(retired, clock=clock, database=database)) as after:
        replay = after.post("/api/1/me/api-keys", json={"name": "ci"}, headers=headers)
    assert (replay.status_code, replay.headers.get("idempotent-replayed")) == (201, "true"), replay.text
    assert replay.json() == created.json()


def test_rotation_is_no_edit_by_hand_of_a_clients_template_copy(
    http, partner, database, database_url, settings, tmp_path
):
    from tests.content import make_client
    from tests.templates.test_api import create, deploy, instances

    made = create(http, partner)  # its CRM source keeps sealed secrets, as each client's copy does
    in_step, changed = make_client(http, partner, "active"), make_client(http, partner, "active")
    answer = deploy(http, partner, made["id"], client_ids=[in_step, changed])
    dashboard_id = next(d["dashboard_ids"][0] for d in answer["deployed"] if d["client_id"] == changed)
    renamed = http.patch(f"/api/1/dashboards/{dashboard_id}", json={"name": "Mine"}, headers=partner.headers)
    assert renamed.status_code == 200, renamed.text
    old = (tmp_path / "encryption.key").read_text().strip()
    env = {"TENANTRY_ENCRYPTION_KEY": new_key(), "TENANTRY_ENCRYPTION_OLD_KEYS": old}

    rotated = tenantry("secrets", "rotate", url=database_url, cwd=tmp_path, env=env)

    assert rotated.returncode == 0, rotated.stderr
    assert "re-encrypted the secrets of 2 data source(s)" in rotated.stderr
    drift = {i["client_id"]: i["drift"] for i in instances(http, partner, made["id"])}
    assert drift == {in_step: False, changed: True}
