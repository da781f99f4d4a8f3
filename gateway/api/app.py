"""The litestar application: routes, problem rendering, OpenAPI, and one lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from litestar import Litestar
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme

from gateway.api._problems import EXCEPTION_HANDLERS
from gateway.api._security import BEARER_SCHEME
from gateway.api.admin import admin_router
from gateway.api.contracts import contracts_router
from gateway.api.edi import edi_router, edifact_router
from gateway.api.health import live, ready
from gateway.api.lifecycle import approvals_router, return_events_router
from gateway.api.reports import reports_router
from gateway.api.returns import returns_router
from gateway.api.services import Services
from gateway.api.webhook_endpoints import webhook_endpoints_router
from gateway.api.webhooks import webhooks_router
from gateway.edi import PartnerDirectory
from gateway.errors import from_setting
from gateway.lifecycle import PolicyBook
from gateway.mapping import MappingCatalog
from gateway.registry import ContractRegistry
from gateway.routing import load_routing_table
from gateway.settings import Settings

API_TITLE = "Returns gateway"
API_VERSION = "1.0.0"


def create_app(
    settings: Settings | None = None,
    registry: ContractRegistry | None = None,
    mappings: MappingCatalog | None = None,
) -> Litestar:
    """Build the gateway; contracts, mappings and the routing table load now (unless given), so a
    defect stops start-up here. The database's schema is checked as it starts (its lifespan)."""
    settings = settings or Settings.from_env()
    with from_setting("RGW_CONTRACTS_DIR"):
        registry = registry or ContractRegistry.from_folder(settings.contracts_dir)
    with from_setting("RGW_ROUTES_FILE"):
        routing = load_routing_table(settings.routes_file) if settings.routes_file else None
    with from_setting("RGW_MAPPINGS_DIR"):
        mappings = mappings or MappingCatalog.load(settings.mappings_dir, settings.contracts_dir)
    with from_setting("RGW_POLICIES_DIR"):
        policies = PolicyBook.load(settings.policies_dir, settings.contracts_dir)
    with from_setting("RGW_EDI_PARTNERS_FILE"):
        partners = PartnerDirectory.load(settings.edi_partners_file)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            app.state.services = await Services.start(
                settings, registry, stack, routing, mappings, policies=policies, partners=partners
            )
            yield

    openapi = OpenAPIConfig(
        title=API_TITLE,
        version=API_VERSION,
        description="Governed API for returns (RMAs) and credits. Errors are application/problem+json.",
        path="/schema",
        create_examples=False,
        render_plugins=[SwaggerRenderPlugin()],
        components=Components(
            security_schemes={
                BEARER_SCHEME: SecurityScheme(
                    type="http",
                    scheme="bearer",
                    description="API key issued by `returns-gateway keys create`",
                )
            },
        ),
    )
    app = Litestar(
        route_handlers=[
            returns_router(registry),
            reports_router,
            return_events_router(registry),
            approvals_router,
            contracts_router,
            admin_router,
            webhooks_router,
            webhook_endpoints_router,
            edi_router,
            edifact_router,
            live,
            ready,
        ],
        lifespan=[lifespan],
        exception_handlers=EXCEPTION_HANDLERS,
        openapi_config=openapi,
        request_max_body_size=settings.max_body_bytes,
        debug=False,
    )
    # Litestar generates components from handler types only; add every contract (and its
    # $defs) so the served document is self-contained and the request bodies resolve.
    document = app.openapi_schema
    generated = document.components.schemas or {}
    document.components.schemas = {**registry.openapi_components, **generated}  # type: ignore[dict-item]
    app.state.settings = settings
    app.state.registry = registry
    return app
