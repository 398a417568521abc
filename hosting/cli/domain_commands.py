"""`domains` and `domains verify`: custom domains, the DNS records to create, verification
and certificate state."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from hosting.cli import cli
from hosting.cli.context import App
from hosting.cli.output import echo_json, json_option, table, to_jsonable
from hosting.domains import certs, records, state
from hosting.domains.dnscheck import CheckResult, parse_nameserver
from hosting.errors import UsageError
from hosting.spec import names
from hosting.spec.models import Spec

pass_app = click.make_pass_decorator(App)


def _edge_address(spec: Spec, edge: str | None) -> tuple[str, int]:
    if not edge:
        return str(spec.platform.public_ipv4), 443
    try:
        host, port = parse_nameserver(edge)
    except ValueError:
        raise UsageError(f"`{edge}` is not IP:PORT", "e.g. --edge 127.0.0.1:443") from None
    explicit = edge.count(":") == 1 or (edge.startswith("[") and "]:" in edge)
    return host, port if explicit else 443


def _default_caddy_data(spec: Spec) -> Path | None:
    """The edge's data volume on a local engine (readable by root), if it is there."""
    if not spec.platform.docker.host.startswith("unix://"):
        return None
    volume = names.volume_name(spec.platform.name, "edge", "caddy", "data")
    path = Path("/var/lib/docker/volumes") / volume / "_data"
    try:
        return path if path.is_dir() else None
    except OSError:
        return None


def _record_dicts(items: tuple[records.Record, ...]) -> list[dict[str, str]]:
    return [{"type": r.type, "name": r.name, "value": r.value} for r in items]


def _certificate(
    st: state.DomainState, caddy_data: Path | None, edge: tuple[str, int]
) -> certs.CertificateStatus:
    if st.state != state.VERIFIED:
        # No route, so no order: nothing to ask Caddy yet.
        return certs.CertificateStatus(st.domain, certs.PENDING, detail="waits for DNS")
    return certs.certificate_status(st.domain, caddy_data=caddy_data, edge=edge)


def _domain_doc(
    spec: Spec, cd: records.CustomDomain, st: state.DomainState, cert: certs.CertificateStatus
) -> dict[str, Any]:
    req = records.required_records(spec, cd)
    return {
        "domain": cd.domain,
        "tenant": cd.tenant,
        "deployment": cd.deployment,
        "subdomain": cd.hostname,
        "redirect_to": cd.apex,
        "status": st.state,
        "reason": st.reason,
        "added_at": st.added_at,
        "checked_at": st.checked_at,
        "verified_at": st.verified_at,
        "records": _record_dicts(req.records),
        "alternative_records": _record_dicts(req.alternative),
        "certificate": {
            "status": cert.state,
            "issuer": cert.issuer,
            "not_after": cert.not_after,
            "renew_after": cert.renew_after,
            "detail": cert.detail,
        },
    }


def _when(value: Any) -> str:
    return str(to_jsonable(value)) if value is not None else "never"


def _render_text(docs: list[dict[str, Any]]) -> None:
    if not docs:
        click.echo("no custom domains in the file (add them under a deployment's `domains:`)")
        return
    rows = []
    for d in docs:
        cert = d["certificate"]
        cert_text = cert["status"]
        if cert["not_after"] is not None:
            cert_text += f" (until {_when(cert['not_after'])[:10]})"
        target = f"→ {d['redirect_to']}" if d["redirect_to"] else ""
        rows.append(
            [
                d["domain"],
                f"{d['tenant']}/{d['deployment']}",
                d["status"],
                cert_text,
                _when(d["checked_at"]),
                target,
            ]
        )
    headers = ["Domain", "Deployment", "DNS", "Certificate", "Checked", "Redirect"]
    click.echo(table(headers, rows))
    for d in docs:
        click.echo(f"\n{d['domain']}: {d['status']}" + (f" — {d['reason']}" if d["reason"] else ""))
        if d["status"] == state.VERIFIED:
            continue
        click.echo("  create at your DNS provider:")
        for r in d["records"]:
            click.echo(f"    {r['type']:<5} {r['name']} → {r['value']}")
        for r in d["alternative_records"]:
            click.echo(f"    or {r['type']} {r['name']} → {r['value']} (not at a zone apex)")


@cli.group("domains", invoke_without_command=True)
@click.option("--tenant", help="Only this tenant's domains.")
@click.option(
    "--caddy-data",
    envvar="HOSTING_CADDY_DATA",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Caddy's data directory, to see issued certificates "
    "[default: the edge's data volume on a local engine; $HOSTING_CADDY_DATA].",
)
@click.option(
    "--edge",
    envvar="HOSTING_EDGE_TLS",
    help="IP:PORT of the edge's HTTPS listener [default: public_ipv4:443; $HOSTING_EDGE_TLS].",
)
@json_option
@click.pass_context
def domains(
    ctx: click.Context,
    tenant: str | None,
    caddy_data: Path | None,
    edge: str | None,
    as_json: bool,
) -> None:
    """Custom domains: DNS records to create, verification and certificate state."""
    if ctx.invoked_subcommand is not None:
        return
    app = ctx.find_object(App)
    assert app is not None
    spec = app.spec
    edge_at = _edge_address(spec, edge)
    caddy_data = caddy_data or _default_caddy_data(spec)
    docs = [
        _domain_doc(spec, cd, st, _certificate(st, caddy_data, edge_at))
        for cd, st in state.states(spec, app.store_path, tenant)
    ]
    if as_json:
        echo_json({"domains": docs})
    else:
        _render_text(docs)


def _verify_doc(spec: Spec, result: CheckResult, st: state.DomainState) -> dict[str, Any]:
    cd = records.find(spec, st.domain)
    req = records.required_records(spec, cd)
    return {
        "domain": st.domain,
        "tenant": st.tenant,
        "deployment": st.deployment,
        "status": st.state,
        "verified": st.state == state.VERIFIED,
        "reason": result.reason,
        "transient": result.transient,
        "cname_chain": list(result.chain[1:]),
        "addresses": list(result.addresses),
        "checked_at": st.checked_at,
        "records": _record_dicts(req.records),
        "alternative_records": _record_dicts(req.alternative),
    }


@domains.command("verify")
@click.argument("domain", required=False)
@click.option("--tenant", help="Only this tenant's domains (without DOMAIN).")
@json_option
@pass_app
def verify(app: App, domain: str | None, tenant: str | None, as_json: bool) -> None:
    """Check DOMAIN's DNS records now (or every custom domain's) and record the result.

    Exits 1 when the named DOMAIN is not verified."""
    spec = app.spec
    outcomes = state.verify(spec, app.store_path, domain, tenant=tenant)
    docs = [_verify_doc(spec, r, st) for r, st in outcomes]
    fresh = set(state.newly_verified(outcomes))
    for d in docs:
        d["newly_verified"] = d["domain"] in fresh
    if as_json:
        echo_json({"domains": docs})
    else:
        if not docs:
            click.echo("no custom domains to verify")
        for d in docs:
            mark = "verified" if d["verified"] else d["status"]
            click.echo(f"{d['domain']}: {mark} — {d['reason']}")
            if not d["verified"]:
                want = " and ".join(f"{r['type']} → {r['value']}" for r in d["records"])
                alt = " or ".join(f"{r['type']} → {r['value']}" for r in d["alternative_records"])
                click.echo(f"  needs {want}" + (f" (or {alt})" if alt else ""))
        if fresh:
            click.echo(
                f"next: `hosting apply` routes {', '.join(sorted(fresh))}; "
                "Caddy then obtains the certificate"
            )
    if domain and not all(d["verified"] for d in docs):
        if not as_json:
            click.echo(f"error: {domain} is not verified", err=True)
        raise click.exceptions.Exit(1)
