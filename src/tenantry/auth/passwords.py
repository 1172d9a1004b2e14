"""The rules for a password someone chooses (SPEC §12 "Passwords").

At least 10 characters, not only blanks, not the user's e-mail address, and not among the 100,000
most common passwords. They apply wherever a password is chosen: users added with a password, the
invitation page, `tenantry partner create --admin-password`, and published links (which have no
e-mail). A refusal is `422 weak_password` whose sentence names the reason.

The list of common passwords ships in this package (`common-passwords.txt.gz`; its origin and
licence are in `common-passwords.txt.gz.NOTICE` beside it). It is read once, on the first check.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from functools import cache
from importlib.resources import files

from tenantry.errors import WeakPassword

MIN_LENGTH = 10
# Every form and schema that takes a password takes this many characters at most (`fields.Password`).
MAX_LENGTH = 200
COMMON_LIST = "common-passwords.txt.gz"


@dataclass(frozen=True)
class Weakness:
    reason: str  # a stable word for programs: too_short, too_long, blank, email, common
    sentence: str


TOO_SHORT = Weakness("too_short", f"The password needs at least {MIN_LENGTH} characters.")
BLANK = Weakness("blank", "The password cannot be made only of spaces or other blank characters.")
IS_EMAIL = Weakness("email", "The password cannot be the e-mail address.")
TOO_LONG = Weakness("too_long", f"The password may have at most {MAX_LENGTH} characters.")
COMMON = Weakness("common", "This password is one of the most common passwords; choose another one.")


def weakness(password: str, email: str | None = None) -> Weakness | None:
    """Why the password may not be chosen, or None when it may."""
    if len(password) < MIN_LENGTH:
        return TOO_SHORT
    if len(password) > MAX_LENGTH:  # it could be set here, but never typed into a sign-in form
        return TOO_LONG
    if not password.strip():
        return BLANK
    folded = password.casefold()
    if email is not None and folded == email.strip().casefold():
        return IS_EMAIL
    if folded in _common_passwords():
        return COMMON
    return None


def check_password(password: str, email: str | None = None) -> None:
    """Refuse a weak password with `422 weak_password`; pass the e-mail of the user it is for."""
    found = weakness(password, email)
    if found is not None:
        raise WeakPassword(found.sentence, field="password", reason=found.reason)


@cache
def _common_passwords() -> frozenset[str]:
    """The common passwords that the length rule alone would let through, case-folded.

    Shorter ones are refused for their length before this list is asked, so they are not kept in
    memory: of the 100,000, some 2,300 remain (a fraction of a megabyte instead of ten).
    """
    data = files("tenantry.auth").joinpath(COMMON_LIST).read_bytes()
    lines = gzip.decompress(data).decode("utf-8").splitlines()
    return frozenset(folded for line in lines if len(folded := line.casefold()) >= MIN_LENGTH)
