"""Authentication and tenancy: API keys bound to one partner and a set of scopes.

:class:`Scope` is imported at once (an enum, the command line's option type); the rest, which
needs PostgreSQL (the keys' record) or Redis (the import from it), on first use, so
``returns-gateway --help`` loads no database driver.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from gateway.auth._scopes import Scope

if TYPE_CHECKING:
    from gateway.auth._authenticator import Authenticator, Principal
    from gateway.auth._import import import_from_redis
    from gateway.auth._keys import ApiKeyRecord, IssuedKey, KeyStore, hash_key, validate_partner_id

__all__ = [
    "ApiKeyRecord",
    "Authenticator",
    "IssuedKey",
    "KeyStore",
    "Principal",
    "Scope",
    "hash_key",
    "import_from_redis",
    "validate_partner_id",
]

#: Each name imported on first use, and the module it comes from.
_LAZY = {
    "Authenticator": "_authenticator",
    "Principal": "_authenticator",
    "ApiKeyRecord": "_keys",
    "IssuedKey": "_keys",
    "KeyStore": "_keys",
    "hash_key": "_keys",
    "import_from_redis": "_import",
    "validate_partner_id": "_keys",
}


def __getattr__(name: str) -> object:
    home = _LAZY.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value
