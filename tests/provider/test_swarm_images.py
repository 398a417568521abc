"""Which images apply loads onto which swarm node (hosting.provider.swarm_images): each
only where its tasks may be placed (the real loading: tests/swarm/test_example_on_swarm.py)."""

from __future__ import annotations

from hosting.provider.swarm_images import Node, placements, runs_on
from hosting.spec import loads
from hosting.stacks.desired import desired_containers
from tests.stacks.conftest import fixed_settings
from tests.stacks.test_swarm_program import SWARM_YAML


def node(role: str = "worker", db: bool = False) -> Node:
    return Node(id="n", name="n", role=role, db=db, ready=True, active=True)


def test_each_image_goes_where_its_tasks_may_run() -> None:
    spec = loads(SWARM_YAML)
    where = placements(desired_containers(spec, fixed_settings(spec)))
    postgres, proxy = spec.platform.images.postgres_for(15), spec.platform.images.proxy
    assert where == {
        "nginx:alpine": {"any"},
        "hosting-test/api:latest": {"any"},
        postgres: {"db"},
        proxy: {"manager"},
    }

    def images(n: Node) -> set[str]:
        return {image for image, w in where.items() if runs_on(n, w)}

    apps = {"nginx:alpine", "hosting-test/api:latest"}
    assert images(node()) == apps
    assert images(node(db=True)) == apps | {postgres}
    assert images(node(role="manager")) == apps | {proxy}


def test_a_stopped_deployment_needs_no_image() -> None:
    spec = loads(SWARM_YAML.replace("        replicas: 3\n", "        stopped: true\n"))
    where = placements(desired_containers(spec, fixed_settings(spec)))
    assert "nginx:alpine" in where  # globex/portal still runs it
    spec = loads(
        SWARM_YAML.replace("        port: 8080\n", "        port: 8080\n        stopped: true\n")
    )
    assert "hosting-test/api:latest" not in placements(
        desired_containers(spec, fixed_settings(spec))
    )
