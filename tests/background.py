"""The worker fixtures by their old address: `tests/web/conftest.py` imports them from here. They
are defined in `tests/conftest.py`, like every fixture; nothing else should import this module."""

from tests.conftest import make_worker, send_mail  # noqa: F401
