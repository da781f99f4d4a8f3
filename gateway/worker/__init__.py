"""A connector as the platform runs it: ``returns-gateway connector run NAME``.

The generic runtime (:mod:`gateway.runtime`) wired to the rest of the platform: the routing
table, the mapping catalog, Redis, and the lifecycle's notice of dead letters.
"""

from gateway.worker._process import connector_runtime, run_connector

__all__ = ["connector_runtime", "run_connector"]
