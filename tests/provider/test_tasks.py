"""Where a deployment's task containers are found on a swarm (hosting.provider.tasks), with
no Docker: the manager's task list placed on the nodes' engines of platform.swarm.nodes."""

from __future__ import annotations

from typing import Any

import pytest

from hosting.errors import ProviderError
from hosting.metering.engine import Engine
from hosting.provider.tasks import TaskAt, _listing, place_tasks

MANAGER = "unix:///run/swarm/mgr/docker.sock"
LISTED = {"mgr": MANAGER, "w1": "tcp://10.0.0.11:2375", "w2": "tcp://10.0.0.12:2375"}
NAMES = {"id-mgr": "mgr", "id-w1": "w1", "id-w2": "w2", "id-w3": "w3"}


def task(slot: int, node: str, container: str | None) -> dict[str, Any]:
    status: dict[str, Any] = {"State": "running"}
    if container is not None:
        status["ContainerStatus"] = {"ContainerID": container}
    return {"ID": f"t{slot}", "Slot": slot, "NodeID": node, "Status": status}


def test_each_task_is_on_its_nodes_engine_in_slot_order() -> None:
    tasks = [task(3, "id-w2", "c3"), task(1, "id-w1", "c1"), task(2, "id-mgr", "c2")]
    placed = place_tasks(tasks, NAMES, "id-mgr", MANAGER, LISTED, "acme/shop")
    assert placed == [
        TaskAt(1, "w1", "tcp://10.0.0.11:2375", "c1"),
        TaskAt(2, "mgr", MANAGER, "c2"),
        TaskAt(3, "w2", "tcp://10.0.0.12:2375", "c3"),
    ]


def test_the_managers_own_tasks_need_no_entry_in_nodes() -> None:
    # platform.swarm.nodes may leave the manager out: its engine is platform.docker.host
    placed = place_tasks([task(1, "id-mgr", "c1")], NAMES, "id-mgr", MANAGER, {}, "acme/main")
    assert placed == [TaskAt(1, "mgr", MANAGER, "c1")]


def test_a_task_not_created_yet_is_left_out() -> None:
    tasks = [task(1, "id-w1", None), task(1, "id-w2", "c9")]
    placed = place_tasks(tasks, NAMES, "id-mgr", MANAGER, LISTED, "acme/main")
    assert placed == [TaskAt(1, "w2", "tcp://10.0.0.12:2375", "c9")]


def test_a_node_missing_from_the_list_is_named_with_the_fix() -> None:
    with pytest.raises(ProviderError) as caught:
        place_tasks([task(1, "id-w3", "c1")], NAMES, "id-mgr", MANAGER, LISTED, "acme/main")
    assert "acme/main runs on node w3, which is not in platform.swarm.nodes" in caught.value.message
    assert caught.value.hint == "add `w3: <its engine's address>` to platform.swarm.nodes"


def test_a_node_that_does_not_answer_is_named(tmp_path: Any) -> None:
    # a real client on a socket no engine listens on
    host = f"unix://{tmp_path}/no-engine.sock"
    with pytest.raises(ProviderError) as caught:
        _listing(Engine(host, 2.0), "w1", "acme/main")
    assert caught.value.message.startswith(
        f"node w1 ({host}), where acme/main runs, does not answer"
    )
    assert caught.value.hint is not None and "docker node ls" in caught.value.hint
