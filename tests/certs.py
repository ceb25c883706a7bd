"""Self-signed certificates for the tests' loopback TLS servers, made with the openssl command."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest


def self_signed(directory: Path, *, ip_san: bool = True) -> tuple[Path, Path]:
    """(certificate, key) for 127.0.0.1 in `directory`; skips the test where openssl cannot make one.
    `ip_san=False` leaves out the 127.0.0.1 name (CN=localhost): a certificate no client may accept."""
    if shutil.which("openssl") is None:
        pytest.skip("no openssl command to make a certificate")
    cert, key = directory / "c.pem", directory / "k.pem"
    names = ["-subj", "/CN=localhost"]
    if ip_san:
        names = ["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"]
    made = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                           "-out", str(cert), "-days", "1", *names], capture_output=True, timeout=60)
    if made.returncode != 0:
        pytest.skip("openssl could not make a certificate")
    return cert, key
