"""The public surface of ``hookline.transport``: what other layers may import from it."""

from __future__ import annotations

import ast
from pathlib import Path

import hookline.transport

ABOVE = (
    "hookline.api",
    "hookline.cli",
    "hookline.delivery",
    "hookline.operations",
    "hookline.processes",
    "hookline.server",
    "hookline.storage",
    "hookline.testing",
    "hookline.web",
)


def test_public_names_are_pinned_and_sorted() -> None:
    """``__all__`` lists exactly these names, in ruff's isort order; adding one is a
    decision, taken here."""
    assert hookline.transport.__all__ == [
        "DEFAULT_OPTIONS",
        "RESPONSE_BODY_LIMIT_BYTES",
        "AsyncioTransport",
        "GuardedResolver",
        "HttpResult",
        "Lookup",
        "NonCanonical",
        "RequestOptions",
        "SsrfBlocked",
        "SsrfPolicy",
        "Target",
        "TlsOptions",
        "Transport",
        "parse_target",
        "tls_refusal",
    ]


def test_every_public_name_resolves() -> None:
    """Each name in ``__all__`` is an attribute of the package, so a star import works."""
    missing = [name for name in hookline.transport.__all__ if not hasattr(hookline.transport, name)]
    assert missing == []


def test_the_transport_layer_imports_nothing_above_it() -> None:
    """The package sits below ``delivery`` and above ``domain``: none of its modules imports
    a layer above it."""
    package = Path(hookline.transport.__file__).parent
    offending: list[str] = []
    for path in sorted(package.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            offending += [f"{path.name}: {n}" for n in names if n.startswith(ABOVE)]
    assert offending == []
