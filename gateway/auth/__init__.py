"""Authentication and tenancy: API keys bound to one partner and a set of scopes."""

from gateway.auth._authenticator import Authenticator, Principal
from gateway.auth._keys import ApiKeyRecord, IssuedKey, KeyStore, hash_key, validate_partner_id
from gateway.auth._scopes import Scope

__all__ = [
    "ApiKeyRecord",
    "Authenticator",
    "IssuedKey",
    "KeyStore",
    "Principal",
    "Scope",
    "hash_key",
    "validate_partner_id",
]
