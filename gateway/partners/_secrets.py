"""Partners' signing secrets, encrypted at rest (Fernet: AES-128-CBC and HMAC-SHA256).

The gateway must keep each endpoint's secret to sign with it, so unlike API keys it cannot
store a hash: it stores a Fernet token made with ``RGW_SECRETS_KEY`` and opens it to sign.
Whoever reads Redis (a dump, a replica, a backup) learns nothing without that key.

``RGW_SECRETS_KEY`` holds one or more keys, comma-separated, newest first: the first seals
new secrets, every one opens (``MultiFernet``). To rotate: put a new key in front of the old
one on every gateway and connector, run ``returns-gateway webhooks reencrypt`` (each stored
secret sealed again with the new key), then drop the old key.
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from gateway.errors import SecretsKeyError
from gateway.settings import Settings

CLEAR_PREFIX = "whsec_"
"""How a secret stored before encryption starts: still read, sealed by ``reencrypt``."""


def generate_key() -> str:
    """A new key for ``RGW_SECRETS_KEY``."""
    return Fernet.generate_key().decode()


class SecretBox:
    """Seals and opens signing secrets with the keys of ``RGW_SECRETS_KEY``."""

    def __init__(self, keys: str) -> None:
        parts = [part.strip() for part in keys.split(",") if part.strip()]
        if not parts:
            raise SecretsKeyError("RGW_SECRETS_KEY is not set: partners' webhook secrets cannot be kept")
        fernets = []
        for n, part in enumerate(parts, start=1):
            try:
                fernets.append(Fernet(part))
            except ValueError as exc:  # never echo the key itself
                raise SecretsKeyError(
                    f"RGW_SECRETS_KEY: key {n} is not a Fernet key (32 url-safe base64 bytes)"
                ) from exc
        self._fernet = MultiFernet(fernets)

    @classmethod
    def from_settings(cls, settings: Settings) -> SecretBox:
        return cls(settings.secrets_key)

    def seal(self, secret: str) -> str:
        """The stored form of ``secret``, sealed with the newest key."""
        return self._fernet.encrypt(secret.encode()).decode()

    def open(self, stored: str) -> str:
        """The secret behind its stored form (a secret stored in clear before is taken as it is)."""
        if stored.startswith(CLEAR_PREFIX):
            return stored
        try:
            return self._fernet.decrypt(stored.encode()).decode()
        except InvalidToken as exc:
            raise SecretsKeyError(
                "a stored webhook secret opens with none of RGW_SECRETS_KEY's keys (a key dropped too soon?)"
            ) from exc

    def reseal(self, stored: str) -> str:
        """``stored`` sealed with the newest key (a clear one sealed for the first time)."""
        if stored.startswith(CLEAR_PREFIX):
            return self.seal(stored)
        try:
            return self._fernet.rotate(stored.encode()).decode()
        except InvalidToken as exc:
            raise SecretsKeyError(
                "a stored webhook secret opens with none of RGW_SECRETS_KEY's keys"
            ) from exc
