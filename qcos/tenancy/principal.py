"""Who is acting: a user, in one tenant, with the roles they hold there."""

from __future__ import annotations

from dataclasses import dataclass

from qcos.errors import PermissionDenied

from .models import ApiKey, Tenant
from .roles import capabilities_of


@dataclass(frozen=True)
class Principal:
    user: object
    tenant: Tenant
    roles: frozenset[str]
    api_key: ApiKey | None = None

    @property
    def capabilities(self) -> frozenset[str]:
        return capabilities_of(self.roles)

    def can(self, capability: str) -> bool:
        return capability in self.capabilities

    def require(self, capability: str) -> None:
        if not self.can(capability):
            raise PermissionDenied(
                f"your role in {self.tenant.slug} ({', '.join(sorted(self.roles)) or 'none'}) "
                f"does not allow {capability}",
                details={"required": capability},
            )
