"""The certificates every chatconf client trusts: one answer for `run`, `load`, `proxy` and the preflight.

Before, the preflight and the conformance client trusted httpx's bundle (certifi) and ignored
`SSL_CERT_FILE`, while the load client and the proxy trusted the system store and honoured it: a
gateway behind a company CA passed `load` and was refused by `run`'s preflight. Now each trusts the
system store (with OpenSSL's `SSL_CERT_FILE` / `SSL_CERT_DIR` when set) and certifi's bundle too, so
a Python without a system store (macOS python.org builds) still verifies public endpoints.
"""

from __future__ import annotations

import contextlib
import functools
import os
import ssl

CA_ENV_HINT = "set SSL_CERT_FILE to a PEM file that holds its issuer to trust it"


def client_context() -> ssl.SSLContext:
    """The verifying client context; one per process and CA setting (loading the bundles costs
    milliseconds, and a context is safely shared). HTTP/1.1 is the only protocol offered."""
    return _context(os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))


@functools.cache
def _context(cafile: str | None, capath: str | None) -> ssl.SSLContext:
    ctx = ssl.create_default_context()  # the system store; OpenSSL reads SSL_CERT_FILE / SSL_CERT_DIR
    with contextlib.suppress(ImportError, OSError, ssl.SSLError):
        import certifi

        ctx.load_verify_locations(cafile=certifi.where())
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


__all__ = ["CA_ENV_HINT", "client_context"]
