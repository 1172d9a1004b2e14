from tests.background import make_worker, receiver, spawn, worker  # noqa: F401
from tests.content import data_server  # noqa: F401
