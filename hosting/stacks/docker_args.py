"""ContainerSpec → pulumi_docker.Container arguments (imported only inside the program)."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_docker as docker

from hosting.stacks.containers import ContainerSpec


def container_args(
    spec: ContainerSpec,
    *,
    image_id: pulumi.Input[str],
    secret_values: dict[str, str] | None = None,
    network_ids: dict[str, pulumi.Input[str]] | None = None,
) -> dict[str, Any]:
    """Keyword arguments for `docker.Container`: every setting comes from `spec`.

    Env values named in `spec.secret_env` are wrapped as Pulumi secrets, so the whole `envs`
    list is encrypted in state and masked in previews.
    """
    values = {**spec.env, **(secret_values or {})}
    plain = [f"{k}={values[k]}" for k in sorted(values)]
    # One secret wrapper for the list (not one per item): the engine encrypts the whole list
    # either way, and fewer Outputs keep large programs fast.
    envs: pulumi.Input[list[str]] = (
        pulumi.Output.secret(plain) if spec.secret_env & set(values) else plain
    )
    nets = network_ids or {}
    args: dict[str, Any] = {
        "name": spec.name,
        "image": image_id,
        "envs": envs,
        "labels": [docker.ContainerLabelArgs(label=k, value=v) for k, v in spec.labels.items()],
        "read_only": spec.read_only,
        "tmpfs": dict(spec.tmpfs),
        "capabilities": docker.ContainerCapabilitiesArgs(
            drops=canonical_caps(spec.cap_drop), adds=canonical_caps(spec.cap_add)
        ),
        "security_opts": list(spec.security_opts),
        "memory": spec.memory_mb,
        "memory_swap": spec.memory_mb,
        "cpus": canonical_cpus(spec.cpus),
        "ulimits": [
            docker.ContainerUlimitArgs(name="nproc", soft=spec.nproc, hard=spec.nproc),
            docker.ContainerUlimitArgs(name="nofile", soft=spec.nofile, hard=spec.nofile),
        ],
        "restart": spec.restart,
        "log_driver": "json-file",
        "log_opts": dict(spec.log_opts),
        "destroy_grace_seconds": spec.stop_timeout_s,
        "stop_timeout": spec.stop_timeout_s,
        "networks_advanced": [
            docker.ContainerNetworksAdvancedArgs(
                name=nets.get(n.network, n.network), aliases=list(n.aliases)
            )
            for n in spec.networks
        ],
        "mounts": [
            docker.ContainerMountArgs(
                target=m.target, source=m.source, type=m.kind, read_only=m.read_only
            )
            for m in spec.mounts
        ],
        "ports": [
            docker.ContainerPortArgs(internal=p.internal, external=p.external, ip=p.ip)
            for p in spec.ports
        ],
    }
    # Empty lists are the defaults: leaving them out keeps previews short and saves the SDK
    # serializing them for every container.
    for key in ("mounts", "ports"):
        if not args[key]:
            del args[key]
    if not spec.cap_add:
        args["capabilities"] = docker.ContainerCapabilitiesArgs(drops=canonical_caps(spec.cap_drop))
    if spec.command:
        args["command"] = list(spec.command)
    if spec.entrypoint is not None:
        args["entrypoints"] = [spec.entrypoint]
    if spec.health is not None:
        h = spec.health
        args["healthcheck"] = docker.ContainerHealthcheckArgs(
            tests=list(h.test),
            interval=f"{h.interval_s}s",
            timeout=f"{h.timeout_s}s",
            retries=h.retries,
            start_period=f"{h.start_period_s}s",
        )
    return args


# The provider reads settings back in the engine's own spelling; given in any other, a refresh
# finds a difference on every plan and replaces the container (a perpetual diff).


def canonical_caps(caps: tuple[str, ...]) -> list[str]:
    """Docker reports added and dropped capabilities as CAP_X (ALL stays ALL)."""
    return [c if c == "ALL" or c.startswith("CAP_") else f"CAP_{c}" for c in caps]


def canonical_cpus(cpus: float) -> str:
    """The provider reads NanoCpus back as "2.0", "0.5", "1.25" (a whole number keeps ".0")."""
    nanos = round(cpus * 1_000_000_000)
    whole, frac = divmod(nanos, 1_000_000_000)
    text = f"{whole}.{frac:09d}"
    if text.count("0") == 9:  # the provider's own test for a "round" value
        return f"{whole}.{frac // 100_000_000}"
    return text.rstrip("0")


def io_throttle(spec: ContainerSpec) -> list[pulumi.ResourceTransform]:
    """The disk IO limit, as a transform: the docker plugin takes `deviceReadBps` and
    `deviceWriteBps`, pulumi_docker 5.1's Python classes have no such arguments, and the
    Engine API cannot update them on a running container. Nothing when there is no limit or
    no local device to name."""
    if spec.disk_io_mbps is None or spec.io_device is None:
        return []
    rule = [{"path": spec.io_device, "rate": spec.disk_io_mbps * 1024 * 1024}]

    def throttle(args: pulumi.ResourceTransformArgs) -> pulumi.ResourceTransformResult:
        props = {**args.props, "deviceReadBps": rule, "deviceWriteBps": rule}
        return pulumi.ResourceTransformResult(props=props, opts=args.opts)

    return [throttle]
