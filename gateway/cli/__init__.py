"""``returns-gateway``: the command line, one module per command group."""

from gateway.cli.app import app

__all__ = ["app"]
