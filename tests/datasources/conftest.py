from tests.background import guarded_http, make_worker  # noqa: F401
from tests.content import data_server  # noqa: F401
