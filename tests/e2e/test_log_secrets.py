"""No secret in any log line or error body, over a full cycle at the most verbose level
(issue 14, "attacked in CI").

A real ``hookline serve --dev`` (every attempt logged, uvicorn's access log on) runs with
every logger at DEBUG, uvicorn's included. The cycle creates an application and endpoints
whose custom headers hold credentials, rotates signing secrets (HMAC and ed25519, given and
generated, replayed through an idempotency key), creates, uses and revokes tokens, tries a
guessed one, publishes and delivers to a local receiver, fails deliveries (a 500 and a
refused connection) until they are exhausted, signs operational webhooks with their own
secret, gives endpoints credentials (an OAuth client whose token URL answers no token, an
HTTP Basic password, a client certificate's key), and sends bad input that carries secrets.
Every error body the API answers is
kept; at the end neither the process's whole output nor any error body holds any secret.

Adding to it: a secret is ``cycle.secret("what", value)`` where the step learns it; a step
is a function of ``Cycle`` and one line in ``STEPS``.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from hookline.domain.signing import generate_ed25519_secret, generate_secret
from tests.e2e.harness import (
    ADMIN_TOKEN,
    ENCRYPTION_KEYS,
    HooklineProcess,
    Receiver,
    free_port,
    json_lines,
    sqlite_url,
    wait_until,
)
from tests.integration.certificates import CertificateAuthority

VERBOSE = """
import logging, sys
import uvicorn.config
import hookline.cli

_configure_logging = hookline.cli.configure_logging

def _debug_logging(log_format):
    _configure_logging(log_format)
    logging.getLogger().setLevel(logging.DEBUG)
    logging.getLogger("hookline").debug("hookline logs at DEBUG")

hookline.cli.configure_logging = _debug_logging
_configure = uvicorn.config.Config.configure_logging

def _verbose(self):
    _configure(self)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    logging.getLogger("uvicorn.error").debug("uvicorn logs at DEBUG")

uvicorn.config.Config.configure_logging = _verbose
hookline.cli.main(sys.argv[1:])
"""
"""Starts hookline with the root logger at DEBUG once the CLI has set up its log format,
and uvicorn's loggers at DEBUG after uvicorn sets them."""
SETTINGS = {
    "HOOKLINE_RETRY_SCHEDULE": "0.05,0.05",
    "HOOKLINE_REQUEST_TIMEOUT": "2",
    "HOOKLINE_POLL_INTERVAL": "0.05",
    "HOOKLINE_BREAKER_THRESHOLD": "100",
    "HOOKLINE_API_AUTH_FAILURE_RATE": "0",
}
APP = "/api/v1/app/secrets"
WAIT_SECONDS = 20.0


@dataclass
class Cycle:
    """What the steps share: the admin client, the receiver, the secrets met so far and
    every error body the API answered."""

    client: httpx.Client
    receiver: Receiver
    secrets: dict[str, str] = field(default_factory=dict)
    error_bodies: list[str] = field(default_factory=list)

    def secret(self, what: str, value: str) -> str:
        """Remember a secret to look for, and return it. A prefixed secret is looked for
        without its prefix too, so a log line that cut ``whsec_`` off still counts."""
        self.secrets[what] = value
        for prefix in ("whsec_", "whsk_", "hl_app_", "hl_admin_", "Bearer ", "Basic "):
            if value.startswith(prefix):
                self.secrets[f"{what} (without {prefix.strip()})"] = value[len(prefix) :]
        return value

    def call(self, method: str, path: str, *, token: str | None = None, **kwargs: Any) -> Any:
        """One API call; an error's body is kept for the scan."""
        headers = dict(kwargs.pop("headers", {}))
        if token is not None:
            headers["authorization"] = f"Bearer {token}"
        r = self.client.request(method, path, headers=headers, **kwargs)
        if r.status_code >= 400:
            self.error_bodies.append(f"{method} {path} {r.status_code}: {r.text}")
        return r

    def ok(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        r = self.call(method, path, **kwargs)
        assert r.is_success, (method, path, r.status_code, r.text)
        return {} if r.status_code == 204 else dict(r.json())

    def refused(self, status: int, method: str, path: str, **kwargs: Any) -> None:
        r = self.call(method, path, **kwargs)
        assert r.status_code == status, (method, path, r.status_code, r.text)


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def configured_secrets(c: Cycle) -> None:
    c.secret("admin token", ADMIN_TOKEN)
    c.secret("encryption key", ENCRYPTION_KEYS.split(":", 1)[1])


def application(c: Cycle) -> None:
    c.ok("POST", "/api/v1/app", json={"name": "Secrets", "uid": "secrets"})
    c.ok("POST", "/api/v1/event-type", json={"name": "user.created", "description": "d"})


def endpoint_with_credentials(c: Cycle) -> None:
    headers = {
        "Authorization": c.secret("endpoint bearer", f"Bearer {secrets.token_urlsafe(24)}"),
        "X-Api-Key": c.secret("endpoint api key", secrets.token_hex(20)),
    }
    body = {"url": f"{c.receiver.url}/ok", "uid": "ok", "headers": headers}
    body["secret"] = c.secret("endpoint secret, given", generate_secret())
    c.ok("POST", f"{APP}/endpoint", json=body)


def failing_endpoint(c: Cycle) -> None:
    headers = {"Cookie": c.secret("failing endpoint cookie", f"session={secrets.token_hex(16)}")}
    body = {"url": f"{c.receiver.url}/fail", "uid": "fail", "headers": headers}
    c.ok("POST", f"{APP}/endpoint", json=body)
    key = c.ok("GET", f"{APP}/endpoint/fail/secret")["key"]
    c.secret("failing endpoint secret, generated", key)


def refused_endpoint(c: Cycle) -> None:
    """Nothing listens on its port: every attempt is a refused connection."""
    credential = _basic("hookline", secrets.token_urlsafe(12))
    body = {
        "url": f"http://127.0.0.1:{free_port()}/closed",
        "uid": "closed",
        "headers": {"Authorization": c.secret("refused endpoint basic", credential)},
        "secret": c.secret("refused endpoint ed25519 secret", generate_ed25519_secret()),
    }
    c.ok("POST", f"{APP}/endpoint", json=body)


def rotations(c: Cycle) -> None:
    rotate = f"{APP}/endpoint/ok/secret/rotate"
    given = {"key": c.secret("rotated secret, given", generate_secret())}
    idempotent = {"idempotency-key": "rotate-once"}
    c.ok("POST", rotate, json=given, headers=idempotent)
    c.ok("POST", rotate, json=given, headers=idempotent)  # replayed from the stored answer
    c.ok("POST", rotate, json={})
    c.secret("rotated secret, generated", c.ok("GET", f"{APP}/endpoint/ok/secret")["key"])
    conflicting = {"key": c.secret("secret of a conflicting replay", generate_secret())}
    c.refused(409, "POST", rotate, json=conflicting, headers=idempotent)


def header_changes(c: Cycle) -> None:
    token = c.secret("patched header token", secrets.token_urlsafe(20))
    c.ok("PATCH", f"{APP}/endpoint/ok/headers", json={"headers": {"X-Token": token}})
    c.ok("GET", f"{APP}/endpoint/ok/headers")


def tokens(c: Cycle) -> None:
    scoped = c.secret(
        "application token", c.ok("POST", "/api/v1/token", json={"appId": "secrets"})["token"]
    )
    c.ok("GET", APP, token=scoped)
    portal = c.ok("POST", "/api/v1/auth/app-portal-access/secrets", json={})
    c.secret("portal token", portal["token"])
    c.ok("GET", f"{APP}/endpoint", token=portal["token"])
    c.call("GET", portal["url"].split("#", 1)[0])  # what a browser sends: never the fragment
    admin = c.ok("POST", "/api/v1/token", json={"name": "extra admin"})
    c.secret("generated admin token", admin["token"])
    c.ok("GET", "/api/v1/app", token=admin["token"])
    c.ok("DELETE", f"/api/v1/token/{admin['id']}")
    c.refused(401, "GET", "/api/v1/app", token=admin["token"])
    c.ok("POST", "/api/v1/auth/logout", token=scoped)
    c.refused(401, "GET", APP, token=scoped)


def guessed_tokens(c: Cycle) -> None:
    guess = c.secret("guessed token", "hl_app_" + secrets.token_urlsafe(32))
    c.refused(401, "GET", "/api/v1/app", token=guess)
    basic = c.secret("basic credentials as a token", _basic("admin", secrets.token_hex(8)))
    c.refused(401, "GET", "/api/v1/app", headers={"authorization": basic})


def operational_webhook(c: Cycle) -> None:
    body = {
        "url": f"{c.receiver.url}/ops",
        "secret": c.secret("operational webhook secret", generate_secret()),
        "headers": {
            "Authorization": c.secret("operational bearer", f"Bearer {secrets.token_hex(16)}")
        },
    }
    opw = c.ok("POST", "/api/v1/operational-webhook/endpoint", json=body)
    path = f"/api/v1/operational-webhook/endpoint/{opw['id']}/secret"
    rotated = {"key": c.secret("operational webhook secret, rotated", generate_secret())}
    c.ok("POST", f"{path}/rotate", json=rotated)


def bad_input(c: Cycle) -> None:
    """Refused input that carries secrets: the error names the field, never the value."""
    endpoint = f"{APP}/endpoint"
    url = f"{c.receiver.url}/bad"
    value = c.secret("header value with VT", f"Bearer {secrets.token_hex(12)}")
    c.refused(422, "POST", endpoint, json={"url": url, "headers": {"X-K": value + "\x0b"}})
    value = c.secret("value of a forbidden header", secrets.token_hex(12))
    c.refused(422, "POST", endpoint, json={"url": url, "headers": {"Content-Length": value}})
    value = c.secret("value of an invalid header name", secrets.token_hex(12))
    c.refused(422, "PUT", f"{endpoint}/ok/headers", json={"headers": {"bad name": value}})
    bad_secret = c.secret("malformed signing secret", "whsec_" + secrets.token_hex(10) + "!")
    c.refused(422, "POST", endpoint, json={"url": url, "secret": bad_secret})
    cut = c.secret("secret in cut-off JSON", generate_secret())
    c.refused(422, "POST", endpoint, content=f'{{"url": "{url}", "secret": "{cut}"'.encode())
    rotate = f"{endpoint}/ok/secret/rotate"
    short = c.secret("too short a rotated secret", "whsec_" + base64.b64encode(b"short").decode())
    c.refused(422, "POST", rotate, json={"key": short})
    c.refused(404, "POST", f"{endpoint}/absent/secret/rotate", json={"key": generate_secret()})


def endpoint_authentication(c: Cycle) -> None:
    """Credentials hookline presents to receivers: an OAuth client secret sent to a token
    URL that answers no token (each attempt records why), an HTTP Basic password and a
    client certificate's private key; and refused credentials in bad input."""
    c.receiver.status_for["/token"] = lambda _: 200  # a body that is no token
    oauth = {
        "authMethod": "clientSecretPost",
        "clientId": "hookline",
        "clientSecret": c.secret("OAuth client secret", secrets.token_urlsafe(24)),
        "grantType": "clientCredentials",
        "tokenUrl": f"{c.receiver.url}/token",
    }
    c.ok("POST", f"{APP}/endpoint", json={"url": f"{c.receiver.url}/oauth", "uid": "oauth"})
    c.ok("PUT", f"{APP}/endpoint/oauth/oauth", json=oauth)
    c.ok("GET", f"{APP}/endpoint/oauth/oauth")
    login = {"username": "hookline", "password": c.secret("Basic password", secrets.token_hex(16))}
    c.ok("PUT", f"{APP}/endpoint/closed/basic-auth", json=login)
    issued = CertificateAuthority("log-secrets-ca").issue("hookline-sender", client=True)
    c.secret("client key", issued.key.splitlines()[1])
    c.ok("PUT", f"{APP}/endpoint/closed/mtls", json={"identity": issued.key + issued.certificate})
    c.ok("GET", f"{APP}/endpoint/closed/mtls")
    alone = {"identity": issued.key}  # a key without its certificate
    c.refused(422, "PUT", f"{APP}/endpoint/closed/mtls", json=alone)
    bad = {
        **oauth,
        "tokenUrl": "not a url",
        "clientSecret": c.secret("refused client secret", secrets.token_hex(12)),
    }
    c.refused(422, "PUT", f"{APP}/endpoint/ok/oauth", json=bad)


def deliveries(c: Cycle) -> None:
    c.receiver.status_for["/fail"] = lambda _: 500
    payload = {"note": c.secret("payload", secrets.token_hex(16))}
    c.ok("POST", f"{APP}/msg", json={"eventType": "user.created", "payload": payload})
    wait_until(lambda: bool(c.receiver.received("/ok")), WAIT_SECONDS, "the delivery to /ok")
    wait_until(lambda: len(c.receiver.received("/fail")) >= 3, WAIT_SECONDS, "three attempts")
    wait_until(lambda: len(c.receiver.received("/token")) >= 2, WAIT_SECONDS, "token requests")
    wait_until(lambda: bool(c.receiver.received("/ops")), WAIT_SECONDS, "an operational webhook")


STEPS: list[Callable[[Cycle], None]] = [
    configured_secrets,
    application,
    endpoint_with_credentials,
    failing_endpoint,
    refused_endpoint,
    rotations,
    header_changes,
    tokens,
    guessed_tokens,
    operational_webhook,
    bad_input,
    endpoint_authentication,
    deliveries,
]


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_no_secret_reaches_a_log_line_or_an_error_body(
    tmp_path: Path, receiver: Receiver, log_format: str
) -> None:
    """Every step of the cycle runs; the server logged at DEBUG, in text lines or JSON lines,
    with access lines and every attempt; no secret of any step, whole or without its prefix,
    is in its output (JSON lines also read decoded, so an escaped secret counts) or in an
    error body."""
    server = HooklineProcess(
        sqlite_url(tmp_path),
        free_port(),
        dict(SETTINGS),
        tmp_path,
        launcher=("-c", VERBOSE),
    ).start("--dev", "--log-format", log_format)
    try:
        with httpx.Client(
            base_url=server.url,
            headers={"authorization": f"Bearer {ADMIN_TOKEN}"},
            timeout=10,
        ) as client:
            cycle = Cycle(client, receiver)
            for step in STEPS:
                step(cycle)
    finally:
        assert server.terminate() == 0, server.output()
    output = server.output()
    if log_format == "json":
        output += "\n" + _decoded(output)
    else:
        assert "DEBUG hookline: hookline logs at DEBUG" in output
        assert "DEBUG:    uvicorn logs at DEBUG" in output
    assert '"POST /api/v1/app/secrets/msg HTTP/1.1" 202' in output, "uvicorn's access log"
    assert "status=500" in output, "the attempt log"
    assert len(cycle.error_bodies) >= 10
    leaks = [
        (what, where)
        for what, value in cycle.secrets.items()
        for where, text in [("log", output), *(("error body", b) for b in cycle.error_bodies)]
        if value in text
    ]
    assert leaks == [], leaks


def _decoded(output: str) -> str:
    """Every JSON line's fields, decoded, one per line; every line must be a JSON object, the
    DEBUG lines of hookline and uvicorn among them."""
    lines = json_lines(output)
    messages = {(line["logger"], line["level"], line["message"]) for line in lines}
    assert ("hookline", "DEBUG", "hookline logs at DEBUG") in messages
    assert ("uvicorn.error", "DEBUG", "uvicorn logs at DEBUG") in messages
    return "\n".join(str(value) for line in lines for value in line.values())
