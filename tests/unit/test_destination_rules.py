"""The operator's destination rules: the port lists, https only, and the settings that
carry them and the API's TLS."""

from __future__ import annotations

import logging
import ssl
from pathlib import Path

import pytest

from hookline.config import ConfigError, load_settings
from hookline.domain.ssrf import ANY_PORT, PortPolicy, destination_reason, parse_ports
from hookline.server import api_tls_context
from tests.integration.certificates import CertificateAuthority


def test_parse_ports_reads_ports_and_inclusive_ranges() -> None:
    assert parse_ports(" 443, 8000-8999 ,,22") == ((443, 443), (8000, 8999), (22, 22))
    assert parse_ports("") == ()


@pytest.mark.parametrize("junk", ["0", "65536", "http", "90-80", "1-2-3", "-5", "443/tcp"])
def test_parse_ports_rejects_what_is_not_a_port_or_a_range(junk: str) -> None:
    with pytest.raises(ValueError, match="port"):
        parse_ports(junk)


def test_deny_wins_over_allow_and_no_allow_list_allows_the_rest() -> None:
    policy = PortPolicy(allow=parse_ports("443,8000-8999"), deny=parse_ports("8080"))
    assert policy.check(443) is None
    assert policy.check(8443) is None
    assert policy.check(8080) == "port 8080 is denied by HOOKLINE_OUTBOUND_DENY_PORTS"
    assert policy.check(80) == "port 80 is not in HOOKLINE_OUTBOUND_ALLOW_PORTS"
    only_deny = PortPolicy(deny=parse_ports("22,25"))
    assert only_deny.check(25) is not None
    assert only_deny.check(26) is None


@pytest.mark.parametrize("port", [0, 65536, 99999, -1])
def test_a_number_outside_the_tcp_range_is_never_a_destination(port: int) -> None:
    assert ANY_PORT.check(port) == f"port {port} is not a TCP port (1-65535)"


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("http://example.com/hook", "must be an https:// URL"),
        ("HTTP://example.com/hook", "must be an https:// URL"),
        ("https://example.com:22/hook", "port 22 is denied"),
        ("https://example.com:99999/", "port must be a number from 1 to 65535"),
    ],
)
def test_destination_reason_refuses_with_a_message_naming_the_rule(url: str, fragment: str) -> None:
    reason = destination_reason(url, https_only=True, ports=PortPolicy(deny=((22, 22),)))
    assert reason is not None and fragment in reason


def test_the_default_port_of_the_scheme_is_the_one_judged() -> None:
    """``https://host/`` is port 443 and ``http://host/`` port 80, for the allow list."""
    only_443 = PortPolicy(allow=((443, 443),))
    assert destination_reason("https://example.com/", https_only=False, ports=only_443) is None
    reason = destination_reason("http://example.com/", https_only=False, ports=only_443)
    assert reason == (
        "port 80 is not in HOOKLINE_OUTBOUND_ALLOW_PORTS: deliveries to it would be refused"
    )


def test_without_rules_every_http_and_https_url_passes() -> None:
    for url in ("http://example.com/", "https://example.com:8443/x"):
        assert destination_reason(url, https_only=False, ports=ANY_PORT) is None


def test_tls_settings_go_together() -> None:
    with pytest.raises(ConfigError, match="HOOKLINE_TLS_CERT and HOOKLINE_TLS_KEY go together"):
        load_settings(environ={"HOOKLINE_TLS_KEY": "key.pem"})
    settings = load_settings(environ={"HOOKLINE_TLS_CERT": "c.pem", "HOOKLINE_TLS_KEY": "k.pem"})
    assert settings.base_url == "https://127.0.0.1:8071"


@pytest.mark.parametrize(
    "url", ["https://proxy:3128", "http://proxy", "http://proxy:3128/path", "socks5://proxy:1080"]
)
def test_an_outbound_proxy_must_be_http_host_port(url: str) -> None:
    with pytest.raises(ConfigError, match="HOOKLINE_OUTBOUND_PROXY"):
        load_settings(environ={"HOOKLINE_OUTBOUND_PROXY": url})


def test_a_refused_proxy_url_is_not_echoed_with_its_password() -> None:
    """The proxy URL may carry credentials: the error names the setting, not the value."""
    with pytest.raises(ConfigError) as refused:
        load_settings(environ={"HOOKLINE_OUTBOUND_PROXY": "http://user:s3cret@proxy/x"})
    assert "s3cret" not in str(refused.value)
    settings = load_settings(environ={"HOOKLINE_OUTBOUND_PROXY": "http://u:s3cret@proxy:3128"})
    assert settings.outbound_proxy == "http://u:s3cret@proxy:3128"
    assert "s3cret" not in repr(settings)


def test_port_settings_are_parsed_and_checked() -> None:
    settings = load_settings(
        environ={"HOOKLINE_OUTBOUND_ALLOW_PORTS": "443", "HOOKLINE_OUTBOUND_DENY_PORTS": "1-1024"}
    )
    assert settings.outbound_allow_ports == ((443, 443),)
    assert settings.outbound_deny_ports == ((1, 1024),)
    with pytest.raises(ConfigError, match="HOOKLINE_OUTBOUND_DENY_PORTS='ssh'"):
        load_settings(environ={"HOOKLINE_OUTBOUND_DENY_PORTS": "ssh"})


def test_the_api_context_has_tls_1_2_as_its_floor(tmp_path: Path) -> None:
    cert, key = CertificateAuthority("ca").issue("hookline").write(tmp_path, "server")
    settings = load_settings(environ={"HOOKLINE_TLS_CERT": str(cert), "HOOKLINE_TLS_KEY": str(key)})
    context = api_tls_context(settings)
    assert context is not None
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert api_tls_context(load_settings(environ={})) is None


def test_a_tls_key_readable_by_others_is_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The key still loads (an operator may know better), but the start says to chmod it."""
    cert, key = CertificateAuthority("ca").issue("hookline").write(tmp_path, "server")
    settings = load_settings(environ={"HOOKLINE_TLS_CERT": str(cert), "HOOKLINE_TLS_KEY": str(key)})
    key.chmod(0o600)
    with caplog.at_level(logging.WARNING, logger="hookline"):
        assert api_tls_context(settings) is not None
    assert caplog.records == []
    key.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="hookline"):
        assert api_tls_context(settings) is not None
    assert [r.getMessage() for r in caplog.records] == [
        f"HOOKLINE_TLS_KEY={key} can be read by other users (mode 644): chmod 600 it"
    ]
