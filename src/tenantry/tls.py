"""One verifying TLS context per process for outgoing HTTP (data-source fetches, webhooks).

Building one reads the whole CA bundle, about 20 ms: far more than a local fetch itself, so a
client made per request reuses this one instead.
"""

from __future__ import annotations

import ssl
from functools import cache

import certifi


@cache
def tls_context() -> ssl.SSLContext:
    return ssl.create_default_context(cafile=certifi.where())
