"""SSL contexts for deliveries: the system's trust for every endpoint that asks for nothing
else, and one context per distinct custom CA bundle and client certificate.

Building a context parses certificates and, with a client certificate, a private key: far
too slow for every request, so each is built once, on the first connection that needs it,
and kept (a bounded number, the oldest let go first).
"""

from __future__ import annotations

import os
import ssl
import tempfile

from hookline.transport._types import TlsOptions

CONTEXT_CACHE_SIZE = 256
"""Distinct custom TLS settings kept built; one per mTLS or private-CA endpoint in use."""


class TlsContexts:
    """The SSL context for each ``TlsOptions`` (None: the system's trust), built once."""

    def __init__(self) -> None:
        self._default: ssl.SSLContext | None = None
        self._custom: dict[TlsOptions, ssl.SSLContext] = {}

    def get(self, tls: TlsOptions | None) -> ssl.SSLContext:
        """The context for ``tls``; ``ssl.SSLError`` or ``ValueError`` if its PEM text cannot
        be used (nothing is kept then, so a corrected setting takes effect)."""
        if tls is None:
            context = self._default
            if context is None:
                context = self._default = ssl.create_default_context()
            return context
        context = self._custom.get(tls)
        if context is None:
            context = build_context(tls)
            if len(self._custom) >= CONTEXT_CACHE_SIZE:
                del self._custom[next(iter(self._custom))]
            self._custom[tls] = context
        return context


def tls_refusal(tls: TlsOptions) -> str | None:
    """Why no context can be built from ``tls`` (OpenSSL's reason, which quotes no key
    material), or None: lets the operations refuse settings with a 422 that would otherwise
    fail every attempt (a key OpenSSL's security level rejects, say)."""
    try:
        build_context(tls)
    except (ssl.SSLError, ValueError, OSError) as exc:
        return str(exc)
    return None


def build_context(tls: TlsOptions) -> ssl.SSLContext:
    """A verifying client context: hostname checked, certificates required, as the default;
    the custom CA bundle, when given, is the only trust."""
    context = ssl.create_default_context(cadata=tls.ca_bundle)
    if tls.client_certificate is not None and tls.client_key is not None:
        _load_client_certificate(context, tls.client_certificate, tls.client_key)
    return context


def _load_client_certificate(context: ssl.SSLContext, certificate: str, key: str) -> None:
    """Python's ssl reads a certificate and key only from a file (bpo-16487), so the PEM is
    written to an anonymous in-memory file where the system has one (Linux ``memfd``), and
    otherwise to a private temporary file (mode 0600) removed as soon as it is read."""
    pem = f"{key.strip()}\n{certificate.strip()}\n".encode()
    memfd_create = getattr(os, "memfd_create", None)
    if memfd_create is not None:
        fd = memfd_create("hookline-client-certificate")
        try:
            with os.fdopen(os.dup(fd), "wb") as file:
                file.write(pem)
            context.load_cert_chain(f"/proc/self/fd/{fd}")
        finally:
            os.close(fd)
        return
    fd, path = tempfile.mkstemp(prefix="hookline-", suffix=".pem")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(pem)
        context.load_cert_chain(path)
    finally:
        os.unlink(path)
