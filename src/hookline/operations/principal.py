"""Who is calling: an admin, or a token scoped to one application with its capabilities."""

from __future__ import annotations

from dataclasses import dataclass

from hookline.domain.audit import CLI_ACTOR, SYSTEM_ACTOR
from hookline.domain.capabilities import ALL, Capability
from hookline.domain.errors import Forbidden
from hookline.domain.models import Application
from hookline.domain.networks import Network


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller of an operation, as its bearer token says.

    ``app_id`` set means the token belongs to one application (a portal token): it sees that
    application only, and does there only what its ``capabilities`` allow. ``token_id`` is
    None for the process itself (startup, the CLI). ``networks``, when set, are the only
    client networks the token may be used from; the API checks them (``api/limits.py``),
    since only a face knows where a request came from.
    """

    token_id: str | None
    app_id: str | None
    capabilities: frozenset[Capability] = ALL
    networks: tuple[Network, ...] | None = None
    address: str | None = None
    """The API client's address, as the trusted-proxy settings resolve it (``api/app.py``):
    where the audit log says a change came from. None off the API."""
    via: str = SYSTEM_ACTOR
    """Who acts when no token does: ``cli`` for a ``hookline`` command, else ``system``."""

    @property
    def actor(self) -> str:
        """The audit log's actor: the token's id, never the token; else ``via``."""
        return self.token_id if self.token_id is not None else self.via

    @property
    def is_admin(self) -> bool:
        return self.app_id is None

    def require_admin(self) -> None:
        if self.app_id is not None:
            raise Forbidden("This operation needs an admin token; portal tokens cannot use it")

    def allows(self, capability: Capability) -> bool:
        return self.app_id is None or capability in self.capabilities

    def require(self, capability: Capability | None) -> None:
        """Refuse a scoped token without ``capability``; None (nothing declared) refuses
        every scoped token, so a route that forgot its declaration fails closed."""
        if self.app_id is None:
            return
        if capability is None:
            raise Forbidden("This operation needs an admin token")
        if capability not in self.capabilities:
            raise Forbidden(
                f"This token lacks the {capability.value} capability this operation needs"
            )

    def sees(self, app: Application) -> bool:
        """Tenant isolation: a scoped token sees its own application and no other."""
        return self.app_id is None or self.app_id == app.id


SYSTEM = Principal(token_id=None, app_id=None)
"""The process acting on its own (first start, auto-disable): full rights."""
CLI = Principal(token_id=None, app_id=None, via=CLI_ACTOR)
"""The operator at the shell (``hookline token``, ``recover``, ``rekey`` …): full rights."""
