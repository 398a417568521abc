"""The one container spec renders the same settings for Pulumi and for `docker create`."""

from __future__ import annotations

from typing import Any

from hosting.spec.models import Limits, Spec
from hosting.stacks import containers
from hosting.stacks.desired import desired_containers
from hosting.stacks.mocked import reveal
from tests.stacks.conftest import fixed_settings


def db_spec() -> containers.ContainerSpec:
    return containers.database_container(
        platform="p",
        tenant="acme",
        deployment="main",
        image="postgres:15-alpine",
        limits=Limits(cpus=1.5, memory_mb=768, disk_io_mbps=100, network_mbps=100),
        user="u_acme_main",
        password="pw",
        host_port=15444,
        bind_ip="127.0.0.1",
    )


def pairs(args: list[str], flag: str) -> list[str]:
    return [args[i + 1] for i, a in enumerate(args) if a == flag]


def test_docker_args_carry_every_hardening_and_limit() -> None:
    args = db_spec().docker_run_args()
    assert "--read-only" in args
    assert pairs(args, "--cap-drop") == ["ALL"]
    assert pairs(args, "--cap-add") == ["CHOWN", "DAC_OVERRIDE", "FOWNER", "SETGID", "SETUID"]
    assert pairs(args, "--security-opt") == ["no-new-privileges:true"]
    assert pairs(args, "--memory") == ["768m"] and pairs(args, "--memory-swap") == ["768m"]
    assert pairs(args, "--cpus") == ["1.5"]
    assert "nproc=512:512" in pairs(args, "--ulimit")
    assert pairs(args, "--publish") == ["127.0.0.1:15444:5432"]
    assert "max-size=10m" in pairs(args, "--log-opt")
    assert sorted(pairs(args, "--label")) == [
        "hosting.deployment=main",
        "hosting.tenant=acme",
        "hosting.type=database",
    ]
    assert "type=volume,source=p_acme_main_data,target=/var/lib/postgresql/data" in pairs(
        args, "--mount"
    )
    assert args[-1] == "postgres:15-alpine"


def test_pulumi_args_match_the_docker_args() -> None:
    from hosting.stacks.docker_args import container_args

    spec = db_spec()
    args: dict[str, Any] = container_args(spec, image_id="sha256:x")
    assert args["read_only"] is True
    assert args["memory"] == 768 and args["memory_swap"] == 768 and args["cpus"] == "1.5"
    assert args["capabilities"].drops == ["ALL"]
    assert args["security_opts"] == ["no-new-privileges:true"]
    assert [(u.name, u.hard) for u in args["ulimits"]] == [("nproc", 512), ("nofile", 8192)]
    assert [(p.internal, p.external, p.ip) for p in args["ports"]] == [(5432, 15444, "127.0.0.1")]
    assert args["tmpfs"] == dict(spec.tmpfs)
    assert {(lbl.label, lbl.value) for lbl in args["labels"]} == set(spec.labels.items())


def test_program_without_settings_runs_under_mocks() -> None:
    """SPEC.md 5: hosting.stacks.program(spec) is a callable others can run under mocks."""
    import pulumi

    import hosting
    import hosting.stacks
    from hosting.stacks.mocked import _Mocks
    from tests.stacks.conftest import REPO

    spec = hosting.load(REPO / "hosting.yaml")
    run = hosting.stacks.program(spec)
    assert callable(run)
    mocks = _Mocks()
    pulumi.runtime.set_mocks(mocks, project="p", stack="s", preview=False)
    pulumi.runtime.test(run)()
    [db] = [r for r in mocks.resources if r.name == "acme_main_0"]
    env = dict(i.split("=", 1) for i in reveal(db.inputs["envs"]))
    assert len(env["POSTGRES_PASSWORD"]) >= 40  # generated, strong


def test_every_writable_tmpfs_refuses_exec_and_setuid(example_spec: Spec) -> None:
    """Each container the program declares for hosting.yaml: apps, databases and the edge.

    A tmpfs is the only writable place of a read-only container; `noexec` keeps a downloaded
    binary from running there (the docker tests prove the kernel refuses it)."""
    desired = desired_containers(example_spec, fixed_settings(example_spec))
    every = [
        *(c for replicas in desired.apps.values() for c in replicas),
        *(c for c in desired.databases.values() if c is not None),
        desired.edge,
    ]
    kinds = {c.kind for c in every}
    assert kinds == {"web", "api", "database", "edge"}, kinds
    for cspec in every:
        assert "/tmp" in cspec.tmpfs, cspec.name
        for target, opts in cspec.tmpfs.items():
            assert {"noexec", "nosuid"} <= set(opts.split(",")), (cspec.name, target, opts)
            assert "exec" not in opts.split(","), (cspec.name, target, opts)
