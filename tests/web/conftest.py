from tests.background import make_worker, send_mail  # noqa: F401
