"""The vault that keeps data sources' secrets (SPEC §14): AES-GCM under a 256-bit key, a random
nonce per seal, a key id in the sealed text, old keys that still open, rotation to the current
key, and a generated key file readable by its owner only."""

from __future__ import annotations

import base64
import os
import stat
import threading

import pytest
from pydantic import ValidationError

from tenantry.settings import Settings
from tenantry.vault import KEY_FILE, Vault, VaultError, load_vault, new_key, parse_key

SECRET = "Bearer sk_live_6xq3 ünïcode ✓"


def key() -> bytes:
    return os.urandom(32)


def settings(tmp_path, **values):  # type: ignore[no-untyped-def]
    return Settings(data_dir=tmp_path, _env_file=None, **values)  # type: ignore[call-arg]


class TestSealing:
    def test_a_sealed_secret_opens_to_the_same_text(self):
        vault = Vault(key())
        assert vault.open(vault.seal(SECRET)) == SECRET

    def test_the_sealed_text_holds_neither_the_secret_nor_its_encoding(self):
        sealed = Vault(key()).seal(SECRET)
        assert SECRET not in sealed
        assert base64.urlsafe_b64encode(SECRET.encode()).decode()[:12] not in sealed

    def test_sealing_the_same_secret_twice_gives_two_texts(self):
        vault = Vault(key())
        first, second = vault.seal(SECRET), vault.seal(SECRET)
        assert first != second  # a fresh nonce each time
        assert vault.open(first) == vault.open(second) == SECRET

    def test_the_sealed_text_names_the_key_that_sealed_it(self):
        vault = Vault(key())
        version, kid, _ = vault.seal(SECRET).split(".")
        assert (version, kid) == ("v1", vault.current_key_id)

    def test_another_key_cannot_open_it(self):
        sealed = Vault(key()).seal(SECRET)
        with pytest.raises(VaultError, match="cannot be opened with the configured keys"):
            Vault(key()).open(sealed)

    @pytest.mark.parametrize("position", [0, 5, 20, -1])
    def test_a_changed_byte_is_detected(self, position):
        vault = Vault(key())
        version, kid, data = vault.seal(SECRET).split(".")
        raw = bytearray(base64.urlsafe_b64decode(data))
        raw[position] ^= 0x01
        tampered = f"{version}.{kid}.{base64.urlsafe_b64encode(bytes(raw)).decode()}"
        with pytest.raises(VaultError):
            vault.open(tampered)

    def test_a_text_relabelled_with_another_key_id_is_refused(self):
        old, new = key(), key()
        vault = Vault(new, [old])
        _, _, data = Vault(old).seal(SECRET).split(".")
        with pytest.raises(VaultError):
            vault.open(f"v1.{vault.current_key_id}.{data}")

    @pytest.mark.parametrize(
        "damaged", ["", "v1", "v2.abcd.AAAA", "v1.abcd.***", "v1.abcd.AAAA", "plain text"]
    )
    def test_a_damaged_text_is_a_vault_error_not_a_crash(self, damaged):
        with pytest.raises(VaultError):
            Vault(key()).open(damaged)


class TestRotation:
    def test_an_old_key_still_opens_what_it_sealed(self):
        old, new = key(), key()
        sealed = Vault(old).seal(SECRET)
        assert Vault(new, [old]).open(sealed) == SECRET

    def test_rotating_seals_again_under_the_current_key(self):
        old, new = key(), key()
        rotated = Vault(new, [old]).rotate(Vault(old).seal(SECRET))
        assert rotated.split(".")[1] == Vault(new).current_key_id
        assert Vault(new).open(rotated) == SECRET  # the old key is no longer needed

    def test_rotating_what_the_current_key_sealed_changes_nothing(self):
        vault = Vault(key(), [key()])
        sealed = vault.seal(SECRET)
        assert vault.rotate(sealed) == sealed

    def test_rotating_what_no_key_opens_is_refused(self):
        with pytest.raises(VaultError):
            Vault(key()).rotate(Vault(key()).seal(SECRET))


class TestKeys:
    def test_a_configured_key_is_used(self, tmp_path):
        configured = new_key()
        vault = load_vault(settings(tmp_path, encryption_key=configured))
        assert Vault(parse_key(configured)).open(vault.seal(SECRET)) == SECRET
        assert not (tmp_path / KEY_FILE).exists()

    def test_without_a_key_one_is_generated_once_readable_by_its_owner_only(self, tmp_path):
        first = load_vault(settings(tmp_path))
        path = tmp_path / KEY_FILE
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        again = load_vault(settings(tmp_path))
        assert again.current_key_id == first.current_key_id
        assert again.open(first.seal(SECRET)) == SECRET
        assert len(parse_key(path.read_text())) == 32

    def test_processes_racing_to_generate_the_key_all_get_the_same_one(self, tmp_path):
        ids: list[str] = []
        threads = [
            threading.Thread(target=lambda: ids.append(load_vault(settings(tmp_path)).current_key_id))
            for _ in range(8)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(set(ids)) == 1
        assert [p.name for p in tmp_path.iterdir()] == [KEY_FILE]  # no draft left behind

    def test_old_keys_are_read_from_their_setting(self, tmp_path):
        old = new_key()
        sealed = Vault(parse_key(old)).seal(SECRET)
        vault = load_vault(settings(tmp_path, encryption_key=new_key(), encryption_old_keys=f" {old} ,"))
        assert vault.open(sealed) == SECRET

    @pytest.mark.parametrize(
        "name, value",
        [
            ("encryption_key", "too-short"),
            ("encryption_key", base64.urlsafe_b64encode(os.urandom(16)).decode()),
            ("encryption_old_keys", f"{new_key()},not base64!"),
        ],
        # Named, not by their random values: every test process must collect the same ids.
        ids=["not base64", "16 bytes, not 32", "one good old key and one bad"],
    )
    def test_a_malformed_key_is_refused_when_the_settings_are_read(self, tmp_path, name, value):
        with pytest.raises(ValidationError, match=r"32 (random )?bytes"):
            settings(tmp_path, **{name: value})
