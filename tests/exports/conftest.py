from tests.background import make_worker, send_mail  # noqa: F401
from tests.content import data_server  # noqa: F401
