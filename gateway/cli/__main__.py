"""``python -m gateway.cli``: the same as the ``returns-gateway`` command."""

from gateway.cli.app import app

app()
