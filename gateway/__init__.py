"""Returns gateway: governed intake, validation, idempotency and confirmed publishing of returns."""

__version__ = "0.1.0"
