"""ContainerSpec → pulumi_docker.Service arguments, for `platform.target: swarm`.

The same typed spec as the docker target (hosting/stacks/containers.py), so a service's
task runs with the settings a container would: image, env, labels, read-only root, dropped
capabilities, tmpfs scratch, CPU and memory, health check, log rotation, stop timeout.

What a Swarm service cannot say (Docker 20.10's service API, pulumi_docker 5.1): the pids
limit, ulimits, `no-new-privileges`, device IO limits and `noexec` on a tmpfs. On a swarm
the nodes' daemon.json sets the first three for every container (README: "Swarm target");
IO limits and tmpfs `noexec` are not enforced there.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pulumi
import pulumi_docker as docker

from hosting.stacks.containers import ContainerSpec
from hosting.stacks.docker_args import canonical_caps

SECRETS_DIR = "/run/secrets"


def _tmpfs_size(options: str) -> int:
    """`size=64m` of a docker tmpfs option string, in bytes (64 MiB when absent)."""
    for opt in options.split(","):
        if opt.startswith("size="):
            value = opt.removeprefix("size=")
            unit = {"k": 1024, "m": 1024**2, "g": 1024**3}.get(value[-1:].lower(), 1)
            return int(value.rstrip("kKmMgG")) * unit
    return 64 * 1024**2


def container_spec(
    spec: ContainerSpec,
    *,
    env: Mapping[str, str],
    secrets: Sequence[docker.ServiceTaskSpecContainerSpecSecretArgs] = (),
    secret_env: bool = False,
) -> docker.ServiceTaskSpecContainerSpecArgs:
    """The task's container: `env` replaces `spec.env` (secrets may have moved to files);
    `secret_env` wraps it as a Pulumi secret (encrypted in state, masked in previews)."""
    plain = {k: env[k] for k in sorted(env)}
    mounts = [
        docker.ServiceTaskSpecContainerSpecMountArgs(
            target=path,
            # as the provider reads it back: mounts are a set, and an element that differs
            # in any field (None against "") is a change on every plan
            source="",
            type="tmpfs",
            # No mode: the kernel's default, 1777. The provider reads a mode back without its
            # sticky bit (Go's Perm()), so 0o1777 would differ on every plan.
            tmpfs_options=docker.ServiceTaskSpecContainerSpecMountTmpfsOptionsArgs(
                size_bytes=_tmpfs_size(opts), mode=0
            ),
        )
        for path, opts in sorted(spec.tmpfs.items())
    ]
    for m in spec.mounts:
        mounts.append(
            docker.ServiceTaskSpecContainerSpecMountArgs(
                target=m.target,
                source=m.source,
                type=m.kind,
                read_only=m.read_only or None,  # read back as null when false
                volume_options=(
                    docker.ServiceTaskSpecContainerSpecMountVolumeOptionsArgs(
                        labels=[
                            docker.ServiceTaskSpecContainerSpecMountVolumeOptionsLabelArgs(
                                label=k, value=v
                            )
                            for k, v in sorted(spec.labels.items())
                        ]
                    )
                    if m.kind == "volume"
                    else None
                ),
            )
        )
    health = None
    if spec.health is not None:
        h = spec.health
        health = docker.ServiceTaskSpecContainerSpecHealthcheckArgs(
            tests=list(h.test),
            interval=f"{h.interval_s}s",
            timeout=f"{h.timeout_s}s",
            retries=h.retries,
            start_period=f"{h.start_period_s}s",
        )
    commands = [spec.entrypoint] if spec.entrypoint is not None else None
    return docker.ServiceTaskSpecContainerSpecArgs(
        image=spec.image,
        env=pulumi.Output.secret(plain) if secret_env else plain,
        labels=[  # sorted, as read back: a set in another order is a change
            docker.ServiceTaskSpecContainerSpecLabelArgs(label=k, value=v)
            for k, v in sorted(spec.labels.items())
        ],
        read_only=spec.read_only,
        cap_drops=canonical_caps(spec.cap_drop),
        cap_adds=canonical_caps(spec.cap_add) or None,
        mounts=mounts,
        healthcheck=health,
        commands=commands,
        args=list(spec.command) if spec.command else None,
        secrets=list(secrets) or None,
        stop_grace_period=f"{spec.stop_timeout_s}s",
        # An app run as PID 1 (busybox httpd, many a shell script) ignores SIGTERM and is only
        # killed when the grace period ends; the provider's delete waits no longer than that
        # period for the container to be gone, so `destroy` failed ("context deadline
        # exceeded"). Docker's init forwards the signal and the app stops at once.
        init=True,
    )


def task_spec(
    spec: ContainerSpec,
    container: docker.ServiceTaskSpecContainerSpecArgs,
    *,
    networks: Sequence[tuple[pulumi.Input[str], Sequence[str]]],
    constraints: Sequence[str] = (),
    reserve: bool = True,
) -> docker.ServiceTaskSpecArgs:
    """The plan's CPU and memory as limits; its memory also reserved (with `reserve`), so
    the scheduler places a task only where its memory fits. CPU is not reserved: like the
    docker target, a node's cores are shared by the plans on it (a reservation of whole
    cores would fit two 1-CPU replicas on a 2-core node). Restarted whatever its exit."""
    nanos = round(spec.cpus * 1_000_000_000)
    return docker.ServiceTaskSpecArgs(
        container_spec=container,
        resources=docker.ServiceTaskSpecResourcesArgs(
            limits=docker.ServiceTaskSpecResourcesLimitsArgs(
                nano_cpus=nanos, memory_bytes=spec.memory_bytes
            ),
            reservation=(
                docker.ServiceTaskSpecResourcesReservationArgs(memory_bytes=spec.memory_bytes)
                if reserve
                else None
            ),
        ),
        restart_policy=docker.ServiceTaskSpecRestartPolicyArgs(
            condition="any", delay="5s", window="0s"
        ),
        log_driver=docker.ServiceTaskSpecLogDriverArgs(
            name="json-file", options=dict(spec.log_opts)
        ),
        networks_advanceds=[
            docker.ServiceTaskSpecNetworksAdvancedArgs(id=net, aliases=list(aliases))
            for net, aliases in networks
        ],
        placement=(
            docker.ServiceTaskSpecPlacementArgs(constraints=list(constraints))
            if constraints
            else None
        ),
    )


def rolling(order: str) -> dict[str, Any]:
    """Rolling updates one task at a time; a task that fails (or fails its health check)
    within the monitor window rolls the whole service back by itself. `start-first` keeps serving
    during an update; `stop-first` is for tasks that cannot run twice (a database on its
    volume, an edge on the node's ports)."""
    return {
        "update_config": docker.ServiceUpdateConfigArgs(
            parallelism=1,
            delay="2s",
            order=order,
            failure_action="rollback",
            monitor="20s",
            max_failure_ratio="0",
        ),
        "rollback_config": docker.ServiceRollbackConfigArgs(
            parallelism=1, order=order, failure_action="pause", monitor="10s"
        ),
        # apply waits until every task runs the new spec, and fails, naming the rollback,
        # when Swarm rolled it back (a new service that never converges is removed again)
        "converge_config": docker.ServiceConvergeConfigArgs(delay="1s", timeout="5m"),
    }


def service_labels(spec: ContainerSpec) -> list[docker.ServiceLabelArgs]:
    return [docker.ServiceLabelArgs(label=k, value=v) for k, v in sorted(spec.labels.items())]


def replicated(count: int) -> docker.ServiceModeArgs:
    return docker.ServiceModeArgs(replicated=docker.ServiceModeReplicatedArgs(replicas=count))
