"""Signed cookies, CSRF comparison and password hashes."""

from __future__ import annotations

import pytest

from tenantry.auth.secrets import hash_password, verify_password
from tenantry.auth.sessions import csrf_matches, new_token, sign, unsign

SECRET = "s" * 40


def test_a_signed_value_comes_back_only_with_the_same_secret():
    token = new_token()
    signed = sign(token, SECRET)
    assert unsign(signed, SECRET) == token
    assert unsign(signed, "another secret " * 3) is None


@pytest.mark.parametrize("cookie", [None, "", "no-dot", "value.", ".mac", "value.forged-mac"])
def test_a_missing_or_forged_cookie_is_refused(cookie):
    assert unsign(cookie, SECRET) is None


def test_session_tokens_carry_256_random_bits():
    tokens = {new_token() for _ in range(100)}
    assert len(tokens) == 100
    assert all(len(t) == 43 for t in tokens)


@pytest.mark.parametrize(
    ("expected", "given", "matches"),
    [("a", "a", True), ("a", "b", False), ("a", "", False), (None, None, False)],
)
def test_csrf_tokens_must_be_present_and_equal(expected, given, matches):
    assert csrf_matches(expected, given) is matches


def test_passwords_are_stored_as_argon2_hashes():
    stored = hash_password("a long secret")
    assert stored.startswith("$argon2id$")
    assert verify_password("a long secret", stored)
    assert not verify_password("a long secreT", stored)
    assert not verify_password("a long secret", None)


@pytest.mark.parametrize(
    ("path", "authorization"),
    [
        ("/api/1/clients", None),  # no key at all
        ("/api/1/me", "Bearer tnt_not_a_key"),  # a malformed key
        ("/api/1/clients/1", "Bearer tnt_000000000000_unknown"),  # an unknown key, on a lean route
    ],
)
def test_a_401_names_the_bearer_scheme_the_api_takes(http, path, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    refused = http.get(path, headers=headers)
    assert (refused.status_code, refused.json()["code"]) == (401, "unauthenticated")
    assert refused.headers["WWW-Authenticate"] == "Bearer"
