"""Outbound TLS is always verified: the certificate must chain to the trust in use (the
system's, or an endpoint's CA bundle) and name the URL's host, even though the socket is
opened to the vetted IP address. There is no option that turns verification off."""

from __future__ import annotations

import socket
import ssl
from pathlib import Path

from hookline.transport import AsyncioTransport, RequestOptions, SsrfPolicy, TlsOptions
from hookline.transport._tls import TlsContexts, build_context
from tests.integration.certificates import CertificateAuthority
from tests.integration.keep_alive import keep_alive_server


async def loopback(host: str, port: int) -> list[tuple[socket.AddressFamily, str]]:
    """A stub resolver: every name is 127.0.0.1 (no real DNS)."""
    return [(socket.AF_INET, "127.0.0.1")]


async def test_the_certificate_must_name_the_urls_host_not_the_address_dialled(
    tmp_path: Path,
) -> None:
    """A certificate for ``right.test`` is accepted at https://right.test and refused at
    https://wrong.test, both resolving to the same loopback address: the host name, not
    the IP the socket was opened to, is what is verified (and sent as the server name)."""
    ca = CertificateAuthority("hookline test CA")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(
        *ca.issue("right", names=("right.test",), addresses=()).write(tmp_path, "right")
    )
    trusted = RequestOptions(tls=TlsOptions(ca_bundle=ca.pem))
    transport = AsyncioTransport(SsrfPolicy(allow_private=True), lookup=loopback)
    try:
        async with keep_alive_server(context) as server:
            ok = await transport.post(f"https://right.test:{server.port}/ok", b"{}", {}, 5, trusted)
            wrong = await transport.post(
                f"https://wrong.test:{server.port}/ok", b"{}", {}, 5, trusted
            )
    finally:
        await transport.close()
    assert ok.status_code == 200
    assert wrong.status_code == 0
    assert wrong.error is not None and wrong.error.startswith("TLS certificate error"), wrong.error
    assert "wrong.test" in wrong.error
    assert server.paths == ["/ok"]


def test_every_outbound_context_requires_a_verified_certificate_and_host_name() -> None:
    """The system's trust and an endpoint's custom bundle alike: certificates required,
    host names checked, nothing older than TLS 1.2."""
    bundle = TlsOptions(ca_bundle=CertificateAuthority("ca").pem)
    for context in (TlsContexts().get(None), build_context(bundle)):
        assert context.verify_mode == ssl.CERT_REQUIRED
        assert context.check_hostname is True
        assert context.minimum_version >= ssl.TLSVersion.TLSv1_2
