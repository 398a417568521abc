"""Engine events → steps, with real pulumi.automation event objects."""

from __future__ import annotations

from pulumi.automation import events as ev

from hosting.provider.events import Collector, Step, place_of

URN = "urn:pulumi:hosting::demo::hosting:stacks:App$docker:index/container:Container::acme_shop_0"


def meta(
    op: ev.OpType, urn: str = URN, type_: str = "docker:index/container:Container"
) -> ev.StepEventMetadata:
    return ev.StepEventMetadata(op=op, urn=urn, type=type_, provider="p")


def event(**kwargs: object) -> ev.EngineEvent:
    return ev.EngineEvent(sequence=1, timestamp=0, **kwargs)  # type: ignore[arg-type]


def test_steps_are_placed_by_tenant_and_deployment() -> None:
    seen: list[Step] = []
    c = Collector(seen.append)
    c(event(resource_pre_event=ev.ResourcePreEvent(meta(ev.OpType.CREATE))))
    c(event(res_outputs_event=ev.ResOutputsEvent(meta(ev.OpType.CREATE))))
    [step] = c.changes()
    assert (step.tenant, step.deployment, step.kind, step.op, step.status) == (
        "acme",
        "shop",
        "container",
        "create",
        "done",
    )
    assert [s.status for s in seen] == ["started", "done"]


def test_replacement_steps_read_as_one_replace() -> None:
    c = Collector()
    c(event(resource_pre_event=ev.ResourcePreEvent(meta(ev.OpType.REPLACE), planning=True)))
    c(event(resource_pre_event=ev.ResourcePreEvent(meta(ev.OpType.DELETE_REPLACED))))
    c(event(res_outputs_event=ev.ResOutputsEvent(meta(ev.OpType.CREATE_REPLACEMENT))))
    assert [s.op for s in c.changes()] == ["replace"]


def test_unchanged_and_component_steps_are_not_changes() -> None:
    c = Collector()
    c(event(resource_pre_event=ev.ResourcePreEvent(meta(ev.OpType.SAME))))
    comp = "urn:pulumi:hosting::demo::hosting:stacks:App::acme_shop"
    c(
        event(
            resource_pre_event=ev.ResourcePreEvent(
                meta(ev.OpType.CREATE, comp, "hosting:stacks:App")
            )
        )
    )
    assert c.changes() == []


def test_failures_and_error_diagnostics_are_kept() -> None:
    c = Collector()
    c(event(res_op_failed_event=ev.ResOpFailedEvent(meta(ev.OpType.UPDATE), 1, 1)))
    c(event(diagnostic_event=ev.DiagnosticEvent("boom\n", "never", "error")))
    c(event(diagnostic_event=ev.DiagnosticEvent("chatter", "never", "info")))
    assert c.changes()[0].status == "failed"
    assert c.diagnostics == ["error: boom"]


def test_place_of_names() -> None:
    assert place_of("acme_shop_1") == ("acme", "shop")
    assert place_of("a-b_c-d_image") == ("a-b", "c-d")
    assert place_of("acme_net") == ("acme", None)
    assert place_of("edge_data") == (None, None)


def test_a_failed_resource_is_named_with_the_provider_s_reason() -> None:
    from hosting.provider.driver import _resource_error

    diagnostics = [
        "error: edge:   sdk-v2/provider2.go:572: sdk.helper_schema: Unable to upload: read-only",
        "error: 1 error occurred:\n\t* creating urn:pulumi:hosting::man::hosting:stacks:Edge"
        "$docker:index/container:Container::edge: 1 error occurred:\n"
        "\t* Unable to upload volume content: container rootfs is marked read-only\n\n",
        "error: update failed",
    ]
    assert _resource_error(diagnostics) == (
        "edge: Unable to upload volume content: container rootfs is marked read-only"
    )
    named = ["error: acme_site_0: 1 error occurred:\n\t* Unable to create container: no CPUs\n"]
    assert _resource_error(named) == "acme_site_0: Unable to create container: no CPUs"
    assert _resource_error(["error: update failed"]) is None
