"""The edge: one Caddy for the host. Config is generated from the spec (pure) and pushed
through Caddy's admin API `/load`, which swaps config gracefully without dropping requests."""

from hosting.edge.caddy import (
    ACCESS_LOG_NAME,
    ADMIN_SOCKET_NAME,
    STATIC_ROOT,
    EdgeRoute,
    build_config,
    edge_routes,
    push_config,
)

__all__ = [
    "ACCESS_LOG_NAME",
    "ADMIN_SOCKET_NAME",
    "STATIC_ROOT",
    "EdgeRoute",
    "build_config",
    "edge_routes",
    "push_config",
]
