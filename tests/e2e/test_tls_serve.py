"""``hookline serve --tls-cert/--tls-key``: the API over https, with a certificate made by a
CA created in the test, verified by the svix SDK and by httpx; with one process and with two
sharing the port."""

from __future__ import annotations

import ssl
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from svix.api import ApplicationIn, EndpointIn, MessageIn, Svix, SvixOptions

from tests.e2e.harness import (
    ADMIN_TOKEN,
    ENCRYPTION_KEYS,
    HooklineProcess,
    Receiver,
    free_port,
    sqlite_url,
    wait_until,
)
from tests.integration.certificates import CertificateAuthority

HEADERS = {"authorization": f"Bearer {ADMIN_TOKEN}"}


def tls_files(folder: Path) -> tuple[Path, Path, Path]:
    """A private CA's certificate file, and a server certificate and key it issued for
    127.0.0.1 and localhost."""
    ca = CertificateAuthority("hookline test CA")
    ca_file = folder / "ca.pem"
    ca_file.write_text(ca.pem)
    cert, key = ca.issue("hookline").write(folder, "server")
    return ca_file, cert, key


@pytest.mark.parametrize("processes", [1, 2])
def test_the_api_answers_over_https_with_a_verified_certificate(
    tmp_path: Path, receiver: Receiver, processes: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The svix SDK, trusting only the test's CA (``SSL_CERT_FILE``, which httpx reads),
    creates an application and an endpoint and publishes over https; the message is
    delivered. Plain http on the same port gets no HTTP answer, and a client that trusts
    only the system's CAs refuses the certificate. SIGTERM still stops the server at once,
    although the SDK keeps an idle TLS connection open and never answers close_notify."""
    ca_file, cert, key = tls_files(tmp_path)
    proc = HooklineProcess(
        sqlite_url(tmp_path),
        free_port(),
        {},
        tmp_path,
        ca_file=ca_file,
    ).start("--dev", "--tls-cert", str(cert), "--tls-key", str(key), "--processes", str(processes))
    try:
        assert proc.url.startswith("https://")
        monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
        svix = Svix(ADMIN_TOKEN, SvixOptions(server_url=proc.url))
        app = svix.application.create(ApplicationIn(name="Acme"))
        svix.endpoint.create(app.id, EndpointIn(url=f"{receiver.url}/tls"))
        svix.message.create(app.id, MessageIn(event_type="user.created", payload={"n": 1}))
        wait_until(lambda: len(receiver.received("/tls")) == 1, 10, "the delivery")

        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{proc.port}/health/ping", timeout=5)
        monkeypatch.delenv("SSL_CERT_FILE")
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            httpx.get(f"{proc.url}/health/ping", timeout=5, verify=ssl.create_default_context())
    finally:
        assert proc.terminate() == 0, proc.output()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"HOOKLINE_TLS_CERT": "cert"}, "HOOKLINE_TLS_CERT and HOOKLINE_TLS_KEY go together"),
        (
            {"HOOKLINE_TLS_CERT": "missing.pem", "HOOKLINE_TLS_KEY": "missing.key"},
            "HOOKLINE_TLS_CERT=missing.pem / HOOKLINE_TLS_KEY=missing.key cannot be used",
        ),
        ({"HOOKLINE_TLS_CERT": "server.crt", "HOOKLINE_TLS_KEY": "other.key"}, "cannot be used"),
    ],
)
@pytest.mark.parametrize("processes", ["1", "2"])
def test_an_unusable_certificate_stops_the_start_with_a_message(
    tmp_path: Path, env: dict[str, str], message: str, processes: str
) -> None:
    """A key without a certificate, a missing file, or a key that is not the certificate's
    stops ``serve`` before it listens, with an exit status and a message naming the
    settings (and no traceback)."""
    _, cert, _ = tls_files(tmp_path)
    CertificateAuthority("other").issue("other").write(tmp_path, "other")
    assert cert.name == "server.crt"
    result = subprocess.run(
        [sys.executable, "-m", "hookline", "serve", "--processes", processes],
        cwd=tmp_path,
        env={
            "PATH": "/usr/bin:/bin",
            "HOOKLINE_DATABASE_URL": sqlite_url(tmp_path),
            "HOOKLINE_PORT": str(free_port()),
            "HOOKLINE_ADMIN_TOKEN": ADMIN_TOKEN,
            "HOOKLINE_ENCRYPTION_KEYS": ENCRYPTION_KEYS,
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr
