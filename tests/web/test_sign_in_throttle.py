"""The sign-in throttle (SPEC §12 "Sign-in"), attacked through the /login form.

5 failures per (e-mail, address) pair, 50 per e-mail from anywhere and 20 per address within 15
minutes lock that pair, e-mail or address for 15 minutes. The client address is the connection's
unless the peer is a trusted proxy (`TENANTRY_TRUSTED_PROXIES`).
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.factories import ADMIN_PASSWORD, add_user, admin_email, csrf_of, new_client, sign_in

WRONG = "The e-mail address or password is not correct."


class TestTheAccountsSharingAnEmail:
    def test_signing_in_to_an_account_never_resets_the_count_of_another_with_the_same_email(
        self, http, make_partner, db
    ):
        victim = make_partner()
        email = admin_email(db, victim)
        db.rollback()
        # Another partner gives a client of its own a user with the victim's e-mail, and knows its
        # password: between guesses at the victim's admin, it signs in to that user.
        other = make_partner()
        add_user(http, other, new_client(http, other, "trial"), email, password="the other one's own")
        guesses = []
        for _ in range(4):
            for n in range(4):
                guesses.append(sign_in(http, email, f"guess {n}").status_code)
            sign_in(http, email, "the other one's own")
            http.cookies.clear()
        assert guesses[:5] == [401] * 5
        assert set(guesses[5:]) == {429}

    def test_a_success_forgives_earlier_mistakes_when_the_email_names_one_account(self, http, partner, db):
        email = admin_email(db, partner)
        db.rollback()
        for _ in range(4):
            assert sign_in(http, email, "mistyped it").status_code == 401
        assert sign_in(http, email, ADMIN_PASSWORD).status_code == 303
        http.cookies.clear()
        for _ in range(4):
            assert sign_in(http, email, "mistyped again").status_code == 401
        assert sign_in(http, email, ADMIN_PASSWORD).status_code == 303


class TestTheLimits:
    def test_a_locked_pair_stays_locked_fifteen_minutes_from_its_fifth_failure(
        self, http, partner, db, clock
    ):
        email = admin_email(db, partner)
        db.rollback()
        for _ in range(5):
            assert sign_in(http, email, "slow guess").status_code == 401
            clock.advance(timedelta(minutes=3))
        # The fifth failure came at minute 12: the first one has left the window, the lock has not.
        locked = sign_in(http, email, ADMIN_PASSWORD)
        assert locked.status_code == 429
        assert "Too many sign-in attempts. Try again in 12 minutes." in locked.text
        assert locked.headers["Retry-After"] == str(12 * 60)
        clock.advance(timedelta(minutes=12))
        assert sign_in(http, email, ADMIN_PASSWORD).status_code == 303

    def test_guesses_from_one_address_do_not_lock_the_owner_out_elsewhere(self, behind_proxy, partner, db):
        email = admin_email(db, partner)
        db.rollback()
        guesser, owner = behind_proxy("203.0.113.66"), behind_proxy("198.51.100.7")
        assert [sign_in(guesser, email, f"guess {n}").status_code for n in range(6)] == [401] * 5 + [429]
        assert sign_in(guesser, email, ADMIN_PASSWORD).status_code == 429
        assert sign_in(owner, email, ADMIN_PASSWORD).status_code == 303

    def test_fifty_failures_from_many_addresses_lock_the_email_everywhere(self, behind_proxy, partner, db):
        email = admin_email(db, partner)
        db.rollback()
        for a in range(10):
            guesser = behind_proxy(f"203.0.113.{a + 1}")
            assert [sign_in(guesser, email, f"guess {n}").status_code for n in range(5)] == [401] * 5
        assert sign_in(behind_proxy("198.51.100.7"), email, ADMIN_PASSWORD).status_code == 429

    def test_twenty_failures_from_one_address_on_any_emails_lock_that_address(
        self, behind_proxy, partner, db
    ):
        email = admin_email(db, partner)
        db.rollback()
        sprayer = behind_proxy("203.0.113.66")
        codes = [sign_in(sprayer, f"someone{n}@client.test", "Summer2025!").status_code for n in range(21)]
        assert codes == [401] * 20 + [429]
        assert sign_in(sprayer, email, ADMIN_PASSWORD).status_code == 429
        assert sign_in(behind_proxy("198.51.100.7"), email, ADMIN_PASSWORD).status_code == 303

    def test_an_ipv6_guesser_cannot_escape_the_pair_limit_by_moving_within_its_64(
        self, behind_proxy, partner, db
    ):
        email = admin_email(db, partner)
        db.rollback()
        codes = [
            sign_in(behind_proxy(f"2001:db8:1:2::{n + 1:x}"), email, "guess").status_code for n in range(6)
        ]
        assert codes == [401] * 5 + [429]
        assert sign_in(behind_proxy("2001:db8:1:3::1"), email, ADMIN_PASSWORD).status_code == 303


class TestTheClientAddress:
    def test_x_forwarded_for_from_a_peer_that_is_not_a_trusted_proxy_is_ignored(self, http):
        codes = []
        for n in range(21):
            form = {
                "email": f"someone{n}@client.test",
                "password": "wrong",
                "csrf_token": csrf_of(http.get("/login").text),
            }
            forged = {"X-Forwarded-For": f"203.0.113.{n + 1}"}
            codes.append(http.post("/login", data=form, headers=forged).status_code)
        assert codes == [401] * 20 + [429]

    def test_behind_a_trusted_proxy_a_forged_left_entry_does_not_change_the_address(
        self, behind_proxy, partner, db
    ):
        email = admin_email(db, partner)
        db.rollback()
        for n in range(5):
            # The client wrote the first entry itself; the proxy appended the address it saw.
            forged = behind_proxy(f"192.0.2.{n + 1}, 203.0.113.66")
            assert sign_in(forged, email, "guess").status_code == 401
        assert sign_in(behind_proxy("203.0.113.66"), email, ADMIN_PASSWORD).status_code == 429


class TestOddInput:
    @pytest.mark.parametrize("odd", ["\x00", "\x1b", "\x85", "\u2028"])
    def test_a_control_character_in_the_email_is_an_ordinary_wrong_sign_in_and_is_counted(self, http, odd):
        email = f"admin{odd}@client.test"
        for _ in range(5):
            response = sign_in(http, email, "whatever it is")
            assert response.status_code == 401
            assert WRONG in response.text
            assert odd not in response.text
        assert sign_in(http, email, "whatever it is").status_code == 429
