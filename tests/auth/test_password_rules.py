"""The password rules (SPEC §12 "Passwords"), and the list of common passwords they ship with."""

from __future__ import annotations

import gzip
from importlib.resources import files

import pytest

from tenantry.auth import passwords
from tenantry.auth.passwords import weakness
from tenantry.demo import DEMO_EMAIL, DEMO_PASSWORD
from tests.factories import PASSWORD

EMAIL = "ann@client.test"


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("12345678", "too_short"),
        (" " * 8, "too_short"),
        ("nine char", "too_short"),
        (" " * 10, "blank"),
        ("\t \u00a0\u3000 \n \t  ", "blank"),
        ("qwertyuiop", "common"),
        ("QwertyUIOP", "common"),
        ("1234567890", "common"),
        ("passwordpassword", "common"),
        ("ann@client.test", "email"),
        ("Ann@Client.TEST", "email"),
    ],
)
def test_a_weak_password_is_refused_with_its_reason(password, reason):
    found = weakness(password, EMAIL)
    assert found is not None
    assert found.reason == reason


def test_the_email_rule_applies_only_where_there_is_an_email():
    assert weakness("ann@client.test", None) is None


@pytest.mark.parametrize(
    "password", [DEMO_PASSWORD, PASSWORD, "correct horse battery", "open sesame", "blue kettle"]
)
def test_the_demo_and_test_passwords_pass_the_rules(password):
    assert weakness(password, DEMO_EMAIL) is None


def test_the_reasons_are_sentences_a_person_understands():
    assert weakness("short", EMAIL).sentence == "The password needs at least 10 characters."  # type: ignore[union-attr]
    assert weakness("qwertyuiop", EMAIL).sentence.startswith("This password is one of the most common")  # type: ignore[union-attr]


def test_the_list_ships_in_the_package_with_its_origin_and_licence_beside_it():
    folder = files("tenantry.auth")
    listed = gzip.decompress(folder.joinpath("common-passwords.txt.gz").read_bytes()).decode().splitlines()
    assert len(listed) == 100_000
    assert listed[:3] == ["123456", "password", "12345678"]
    notice = folder.joinpath("common-passwords.txt.gz.NOTICE").read_text()
    assert "SecLists" in notice and "MIT License" in notice


def test_the_list_is_read_once_and_only_when_first_needed():
    passwords._common_passwords.cache_clear()
    assert passwords._common_passwords.cache_info().currsize == 0
    weakness("short", EMAIL)  # refused for its length: the list is not needed
    assert passwords._common_passwords.cache_info().currsize == 0
    weakness("a long enough one", EMAIL)
    weakness("another long one", EMAIL)
    assert passwords._common_passwords.cache_info().misses == 1
    assert passwords._common_passwords.cache_info().hits == 1
