from tests.content import data_server  # noqa: F401
