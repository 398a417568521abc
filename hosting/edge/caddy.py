"""Caddy JSON config from the spec, and a client that loads it through the admin API.

Why these choices:
- Every web/API deployment gets a route for its generated subdomain and one per *verified*
  custom domain (the caller passes the verified set; an unverified domain gets nothing, so
  Caddy never asks an ACME CA for a certificate it cannot obtain).
- `www.<apex>` listed next to `<apex>` redirects permanently to the apex, keeping path and
  query.
- Replicas are load-balanced round robin with active health checks, and `try_duration`
  holds a request while a replica restarts, so a rolling restart loses no request.
- Static sites are served by the edge's `file_server` from `STATIC_ROOT/<tenant>/<deployment>`,
  which the edge container bind-mounts read-only from the site's folder: no container per site.
- Access logs are JSON lines in a file (request.host, status, duration, size, bytes_read) that
  the metering agent reads per host.
- The admin API listens on a unix socket (in a host directory mounted into the container), never
  on a TCP port: no tenant container and nothing outside the host can reach it.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from hosting.errors import ProviderError
from hosting.spec import names
from hosting.spec.models import DatabaseDeployment, Spec
from hosting.unixhttp import UnixHTTPConnection

STATIC_ROOT = "/srv/static"
ADMIN_SOCKET_NAME = "admin.sock"
ACCESS_LOG_NAME = "access.log"
ACCESS_LOGGER = "edge"  # Caddy names the logger http.log.access.<this>
# How long a request waits for a healthy replica before failing. A replacement stops the old
# container (up to its 10 s grace), starts the new one and waits for the next active health
# check (up to 5 s): 10 s was too short on a busy host, where CI saw requests time out.
TRY_DURATION = "30s"
# What a suspended tenant's hosts answer (SPEC §6): 402 Payment Required, a page saying why,
# and no caching, so the site is back the moment the edge is reloaded after payment.
SUSPENDED_HANDLER: dict[str, Any] = {
    "handler": "static_response",
    "status_code": 402,
    "headers": {
        "Content-Type": ["text/html; charset=utf-8"],
        "Cache-Control": ["no-store"],
    },
    "body": (
        "<!doctype html><meta charset=utf-8><title>Payment required</title>"
        "<h1>402 Payment required</h1><p>This site is paused until its account is paid. "
        "Nothing has been deleted.</p>\n"
    ),
}


@dataclass(frozen=True)
class EdgeRoute:
    """One deployment's place on the edge."""

    tenant: str
    deployment: str
    kind: str
    hosts: tuple[str, ...]  # generated subdomain first, then verified custom domains
    redirects: tuple[tuple[str, str], ...]  # (www host, apex host)
    upstreams: tuple[str, ...]  # host:port dial addresses; empty for static sites
    static_root: str | None
    health_path: str
    health_interval_s: int
    health_timeout_s: int
    suspended: bool = False  # the tenant is suspended: 402 instead of the site
    # Dial every address the one upstream name resolves to, looked up again every few seconds
    # (a swarm service in DNS round-robin mode: one A record per task).
    resolve: bool = False


def edge_routes(
    spec: Spec,
    *,
    verified_domains: frozenset[str] = frozenset(),
    upstreams: Mapping[tuple[str, str], list[str]] | None = None,
    static_root: str = STATIC_ROOT,
    suspended: frozenset[str] = frozenset(),
    static_sources: frozenset[tuple[str, str]] = frozenset(),
    resolve: frozenset[tuple[str, str]] = frozenset(),
) -> list[EdgeRoute]:
    """Every running web/API deployment's hosts and upstreams, in spec order.

    `upstreams` overrides the dial addresses per (tenant, deployment); by default they are the
    replica containers' names on the tenant network (the edge joins every tenant network).
    A `suspended` tenant's deployments keep their hosts (and certificates) but get a 402 page.
    `static_sources`: `source:` deployments whose build is a static site
    (`hosting.sources.build.static_sites`), served like `static`. `resolve`: deployments
    whose one upstream name is looked up for every address it has (EdgeRoute.resolve).
    """
    platform = spec.platform.name
    out: list[EdgeRoute] = []
    for tid, tenant in spec.tenants.items():
        for did, dep in tenant.deployments.items():
            if isinstance(dep, DatabaseDeployment) or dep.stopped:
                continue
            generated = names.hostname(tid, did, dep.type, spec.platform.domain)
            custom = [d for d in dep.domains if d in verified_domains]
            redirects = tuple(
                (d, d[4:]) for d in custom if d.startswith("www.") and d[4:] in custom
            )
            served = [d for d in custom if d not in {r[0] for r in redirects}]
            if dep.static is not None or (tid, did) in static_sources:
                dials: tuple[str, ...] = ()
                root: str | None = f"{static_root}/{tid}/{did}"
            else:
                given = (upstreams or {}).get((tid, did))
                dials = tuple(
                    given
                    if given is not None
                    else [
                        f"{names.container_name(platform, tid, did, i)}:{dep.listen_port}"
                        for i in range(dep.replica_count)
                    ]
                )
                root = None
            out.append(
                EdgeRoute(
                    tenant=tid,
                    deployment=did,
                    kind=dep.type,
                    hosts=(generated, *served),
                    redirects=redirects,
                    upstreams=dials,
                    static_root=root,
                    health_path=dep.health.path,
                    health_interval_s=dep.health.interval_s,
                    health_timeout_s=dep.health.timeout_s,
                    suspended=tid in suspended,
                    resolve=(tid, did) in resolve and not root,
                )
            )
    return out


def _proxy_handler(route: EdgeRoute) -> dict[str, Any]:
    if route.resolve:
        [dial] = route.upstreams
        name, _, port = dial.rpartition(":")
        # Active health checks need fixed upstreams; the passive ones still drop a bad task.
        return {
            "handler": "reverse_proxy",
            "dynamic_upstreams": {"source": "a", "name": name, "port": port, "refresh": "2s"},
            "load_balancing": {
                "selection_policy": {"policy": "round_robin"},
                "try_duration": TRY_DURATION,
                "try_interval": "250ms",
            },
            "health_checks": {"passive": {"fail_duration": "10s", "max_fails": 1}},
        }
    return {
        "handler": "reverse_proxy",
        "upstreams": [{"dial": d} for d in route.upstreams],
        "load_balancing": {
            "selection_policy": {"policy": "round_robin"},
            "try_duration": TRY_DURATION,
            "try_interval": "250ms",
        },
        "health_checks": {
            "active": {
                "uri": route.health_path,
                # Probing more often than the app's own check notices a restart quickly.
                "interval": f"{min(route.health_interval_s, 5)}s",
                "timeout": f"{route.health_timeout_s}s",
            },
            "passive": {"fail_duration": "10s", "max_fails": 1},
        },
    }


def _routes(routes: list[EdgeRoute]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for r in routes:
        for www, apex in r.redirects:
            out.append(
                {
                    "match": [{"host": [www]}],
                    "handle": [
                        {
                            "handler": "static_response",
                            "status_code": 301,
                            "headers": {
                                "Location": [
                                    f"{{http.request.scheme}}://{apex}{{http.request.uri}}"
                                ]
                            },
                        }
                    ],
                    "terminal": True,
                }
            )
        if r.suspended:
            handle: list[dict[str, Any]] = [SUSPENDED_HANDLER]
        elif r.static_root is not None:
            handle = [{"handler": "file_server", "root": r.static_root}]
        else:
            handle = [_proxy_handler(r)]
        out.append({"match": [{"host": list(r.hosts)}], "handle": handle, "terminal": True})
    # Caddy answers an unmatched request with an empty 200; a host nobody serves is a 404.
    out.append(
        {"handle": [{"handler": "static_response", "status_code": 404, "body": "no site\n"}]}
    )
    return out


def _issuer(spec: Spec, ca_root_path: str | None) -> dict[str, Any]:
    acme = spec.platform.acme
    if acme is None or acme.directory_url is None:
        return {"module": "internal"}
    issuer: dict[str, Any] = {"module": "acme", "ca": acme.directory_url}
    if acme.email:
        issuer["email"] = acme.email
    if acme.ca_root:
        issuer["trusted_roots_pem_files"] = [ca_root_path or acme.ca_root]
    return issuer


def build_config(
    spec: Spec,
    *,
    verified_domains: frozenset[str] = frozenset(),
    upstreams: Mapping[tuple[str, str], list[str]] | None = None,
    admin_listen: str = f"unix//run/caddy-admin/{ADMIN_SOCKET_NAME}",
    log_dir: str = "/data/logs",
    static_root: str = STATIC_ROOT,
    http_port: int = 80,
    https_port: int = 443,
    tls: bool = True,
    ca_root_path: str | None = None,
    suspended: frozenset[str] = frozenset(),
    static_sources: frozenset[tuple[str, str]] = frozenset(),
    resolve: frozenset[tuple[str, str]] = frozenset(),
) -> dict[str, Any]:
    """The edge's whole Caddy config as JSON-ready data (pure: same spec, same config).

    `tls=False` serves plain HTTP on `http_port` only (for loopback tests and for an operator
    who terminates TLS elsewhere); otherwise Caddy's automatic HTTPS obtains certificates from
    the issuer of `platform.acme` and redirects HTTP to HTTPS. `ca_root_path` is where Caddy
    finds `platform.acme.ca_root` (inside the edge container it is mounted elsewhere).
    """
    routes = edge_routes(
        spec,
        verified_domains=verified_domains,
        upstreams=upstreams,
        static_root=static_root,
        suspended=suspended,
        static_sources=static_sources,
        resolve=resolve,
    )
    server: dict[str, Any] = {
        "listen": [f":{https_port}"] if tls else [f":{http_port}"],
        "routes": _routes(routes),
        "logs": {"default_logger_name": ACCESS_LOGGER},
    }
    if not tls:
        server["automatic_https"] = {"disable": True}
    http_app: dict[str, Any] = {
        "http_port": http_port,
        "https_port": https_port,
        "servers": {"edge": server},
    }
    config: dict[str, Any] = {
        "admin": {"listen": admin_listen},
        "logging": {
            "logs": {
                "default": {"exclude": [f"http.log.access.{ACCESS_LOGGER}"]},
                "access": {
                    "writer": {
                        "output": "file",
                        "filename": f"{log_dir}/{ACCESS_LOG_NAME}",
                        "roll_size_mb": 100,
                        "roll_keep": 10,
                    },
                    "encoder": {"format": "json"},
                    "include": [f"http.log.access.{ACCESS_LOGGER}"],
                },
            }
        },
        "apps": {
            "http": http_app,
            # Never touch the host's trust store: the internal CA's root is for the edge only,
            # and installing it on every /load is slow and leaks roots onto the machine.
            "pki": {"certificate_authorities": {"local": {"install_trust": False}}},
        },
    }
    if tls:
        policy: dict[str, Any] = {"issuers": [_issuer(spec, ca_root_path)]}
        config["apps"]["tls"] = {"automation": {"policies": [policy]}}
    return config


def _headers(conn: http.client.HTTPConnection) -> dict[str, str]:
    # Caddy accepts only an empty Host on its unix-socket admin endpoint (origin check).
    if isinstance(conn, UnixHTTPConnection):
        return {"Host": ""}
    return {}


def _connection(admin_url: str, timeout: float) -> http.client.HTTPConnection:
    """`unix:///path/admin.sock` or `http://127.0.0.1:2019`."""
    if admin_url.startswith("unix://"):
        return UnixHTTPConnection(admin_url[len("unix://") :], timeout)
    parsed = urlparse(admin_url)
    if parsed.scheme != "http" or not parsed.hostname:
        raise ProviderError(
            f"`{admin_url}` is not a Caddy admin address",
            "use unix:///path/to/admin.sock or http://127.0.0.1:2019",
        )
    return http.client.HTTPConnection(parsed.hostname, parsed.port or 2019, timeout=timeout)


def push_config(admin_url: str, config: Mapping[str, Any], *, timeout: float = 30.0) -> None:
    """Load `config` through the admin API's `POST /load`: Caddy swaps it in gracefully,
    finishing in-flight requests on the old config. Raises ProviderError with Caddy's reason."""
    body = json.dumps(config).encode()
    conn = _connection(admin_url, timeout)
    try:
        conn.request(
            "POST",
            "/load",
            body=body,
            headers={"Content-Type": "application/json", **_headers(conn)},
        )
        resp = conn.getresponse()
        text = resp.read().decode(errors="replace")
    except OSError as exc:
        raise ProviderError(
            f"cannot reach the Caddy admin API at {admin_url}: {exc}",
            "is the edge container running? `hosting status` shows it",
        ) from None
    finally:
        conn.close()
    if resp.status != 200:
        reason = text.strip().replace("\n", " ")[:500]
        raise ProviderError(f"Caddy refused the config (HTTP {resp.status}): {reason}")


def get_config(admin_url: str, *, timeout: float = 10.0) -> Any:
    """The config Caddy is running now (`GET /config/`)."""
    conn = _connection(admin_url, timeout)
    try:
        conn.request("GET", "/config/", headers=_headers(conn))
        resp = conn.getresponse()
        text = resp.read().decode(errors="replace")
    except OSError as exc:
        raise ProviderError(f"cannot reach the Caddy admin API at {admin_url}: {exc}") from None
    finally:
        conn.close()
    if resp.status != 200:
        raise ProviderError(f"Caddy admin API answered HTTP {resp.status}")
    return json.loads(text) if text.strip() else None
