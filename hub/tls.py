"""HTTPS for the hub's API: the server's certificate and key, and the CAs whose client
certificates it accepts (mutual TLS). Loaded once at startup; a file that cannot be used
stops startup with a message naming it.

A client certificate is tied to an account by its fingerprint (`sha256:<hex of the DER>`),
listed under the account's `certificates` in the federation file.
"""

from __future__ import annotations

import hashlib
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_private_key

KEY_PASSWORD_ENV = "CIRT_HUB_TLS_KEY_PASSWORD"


class TlsError(ValueError):
    """A TLS file that cannot be used; the message names the option and the file."""


def fingerprint(der: bytes) -> str:
    """`sha256:<lower-case hex>` of a DER certificate, as the federation file lists it."""
    return "sha256:" + hashlib.sha256(der).hexdigest()


def normal_fingerprint(text: str) -> str:
    """A federation file's fingerprint (any case, colons allowed) in `fingerprint()`'s form."""
    algorithm, _, digest = text.partition(":")
    return f"{algorithm.lower()}:{digest.replace(':', '').lower()}"


def _read(option: str, path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise TlsError(f"{option} {path}: cannot read: {exc.strerror or exc}") from exc


def _certificates(option: str, path: Path) -> list[x509.Certificate]:
    data = _read(option, path)
    try:
        found = x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise TlsError(f"{option} {path}: holds no PEM certificate") from exc
    return found


@dataclass(frozen=True)
class TlsFiles:
    """`serve --tls-cert --tls-key [--tls-client-ca]`: where the HTTPS material is."""

    cert: Path
    key: Path
    client_ca: Path | None = None

    def context(self, environ: Mapping[str, str] = os.environ) -> ssl.SSLContext:
        """A server-side context (TLS 1.2 or later); with `client_ca`, client certificates
        are requested but optional, so Basic and Bearer still work over it."""
        leaf = _certificates("--tls-cert", self.cert)[0]
        if leaf.not_valid_after_utc < datetime.now(UTC):
            raise TlsError(
                f"--tls-cert {self.cert}: expired on {leaf.not_valid_after_utc:%Y-%m-%d %H:%M} UTC"
            )
        # Without a password callback OpenSSL would prompt on the terminal for an encrypted
        # key, and a service would hang; the environment gives it, or decryption fails.
        password = environ.get(KEY_PASSWORD_ENV, "").encode()
        key = _read("--tls-key", self.key)
        try:
            load_pem_private_key(key, password or None)
        except TypeError as exc:
            raise TlsError(
                f"--tls-key {self.key}: the key is encrypted: set {KEY_PASSWORD_ENV}"
                if not password
                else f"--tls-key {self.key}: the key is not encrypted: unset {KEY_PASSWORD_ENV}"
            ) from exc
        except ValueError as exc:
            wrong = f", or {KEY_PASSWORD_ENV} is not its password" if password else ""
            raise TlsError(f"--tls-key {self.key}: not a PEM private key{wrong}") from exc
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            context.load_cert_chain(self.cert, self.key, password=lambda: password)
        except ssl.SSLError as exc:
            raise TlsError(
                f"--tls-key {self.key} does not go with --tls-cert {self.cert} ({exc.reason})"
            ) from exc
        if self.client_ca is not None:
            _certificates("--tls-client-ca", self.client_ca)
            context.load_verify_locations(cafile=self.client_ca)
            # Optional: members without a certificate still log in with Basic or Bearer; a
            # certificate that is sent must verify, or the handshake fails.
            context.verify_mode = ssl.CERT_OPTIONAL
        return context


def tls_files(cert: Path | None, key: Path | None, client_ca: Path | None) -> TlsFiles | None:
    """The files `serve` was given, or None for plain HTTP; TlsError if they do not add up."""
    if cert is None and key is None:
        if client_ca is not None:
            raise TlsError("--tls-client-ca: needs --tls-cert and --tls-key (HTTPS)")
        return None
    if cert is None or key is None:
        raise TlsError("--tls-cert and --tls-key: give both (the certificate and its key)")
    return TlsFiles(cert.resolve(), key.resolve(), client_ca.resolve() if client_ca else None)
