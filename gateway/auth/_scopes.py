"""The scopes an API key can carry."""

from __future__ import annotations

from enum import StrEnum


class Scope(StrEnum):
    """What a key may do; a call needs the scope its route names."""

    RETURNS_WRITE = "returns:write"
    RETURNS_READ = "returns:read"
    RETURNS_APPROVE = "returns:approve"
    WEBHOOKS_MANAGE = "webhooks:manage"
    REPORTS_READ = "reports:read"
    ADMIN = "admin"
