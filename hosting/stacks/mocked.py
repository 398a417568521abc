"""Run the program under `pulumi.runtime.set_mocks` and collect the resource graph.

Used by the tests, the golden files and bench/bench_program.py; operators can use it to see
what the program would declare without an engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi

from hosting.spec.models import Spec
from hosting.stacks.settings import ProgramSettings

SECRET_SIG = "4dabf18193072939515e22adb298388d"  # Pulumi's marker for a secret value on the wire


@dataclass(frozen=True)
class MockResource:
    type: str
    name: str
    inputs: dict[str, Any]
    parent: str | None = None

    @property
    def kind(self) -> str:
        return self.type.rsplit(":", 1)[-1]


class _Mocks(pulumi.runtime.Mocks):
    def __init__(self) -> None:
        self.resources: list[MockResource] = []

    def new_resource(
        self, args: pulumi.runtime.MockResourceArgs
    ) -> tuple[str | None, dict[str, Any]]:
        self.resources.append(MockResource(args.typ, args.name, dict(args.inputs)))
        outputs = dict(args.inputs)
        if args.typ == "docker:index/remoteImage:RemoteImage":
            # A fake image id that follows the image name, as the engine's would.
            outputs["imageId"] = f"sha256:{args.inputs.get('name', args.name)}"
        return f"{args.name}-id", outputs

    def call(
        self, args: pulumi.runtime.MockCallArgs
    ) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        return {}, None


def run_mocked(
    spec: Spec, settings: ProgramSettings | None = None, *, keep_data: bool = True
) -> list[MockResource]:
    """Every resource the program registers, in registration order (children after parents)."""
    from hosting.stacks.build import program

    mocks = _Mocks()
    pulumi.runtime.set_mocks(mocks, project="hosting", stack="mock", preview=False)
    run = program(spec, settings, keep_data=keep_data)

    @pulumi.runtime.test  # type: ignore[untyped-decorator]
    def _go() -> None:
        run()

    from hosting.stacks.build import paused_gc

    with paused_gc():
        _go()
    return mocks.resources


def is_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get(SECRET_SIG) is not None


def reveal(value: Any) -> Any:
    """The plain value of a (possibly secret-wrapped) input, for assertions."""
    if is_secret(value):
        return reveal(value["value"])
    if isinstance(value, dict):
        return {k: reveal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [reveal(v) for v in value]
    return value


def masked(value: Any) -> Any:
    """Secret values replaced by "[secret]": what a golden file may contain."""
    if is_secret(value):
        return "[secret]"
    if isinstance(value, dict):
        return {k: masked(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [masked(v) for v in value]
    return value
