"""`hosting engine build`: the Pulumi CLI and the docker plugin, built from Go modules.

The wrapper modules under `go/` are ours: `go/cli` pins the Pulumi CLI, `go/docker` bridges
the Terraform docker provider (kreuzwerker) to Pulumi's package `docker`. Their go.mod and
go.sum are the pins; the go command fetches every module through the module proxy, so an
operator who mirrors one can build air-gapped.

A build is keyed by the hash of those sources: a second run with nothing changed is a cache
hit that touches nothing.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from hosting.engine.locate import install_root, plugin_path, pulumi_home
from hosting.engine.pins import (
    CLI_VERSION,
    DOCKER_PLUGIN_VERSION,
    GO_PACKAGE_CLI,
    GO_VERSION_SYMBOL,
)
from hosting.errors import EngineMissingError

STAMP = "build.stamp"


@dataclass(frozen=True)
class Built:
    root: Path
    cli: Path
    plugin: Path
    cached: bool


def sources() -> Path:
    """The wrapper modules, as shipped inside the package."""
    return Path(str(resources.files("hosting.engine") / "go"))


def source_key(src: Path) -> str:
    digest = hashlib.sha256(f"{CLI_VERSION}/{DOCKER_PLUGIN_VERSION}".encode())
    for path in sorted(p for p in src.rglob("*") if p.is_file()):
        if path.name == "schema.json":  # generated during the build
            continue
        digest.update(str(path.relative_to(src)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def build(state_dir: Path, *, progress: Callable[[str], None] = lambda _: None) -> Built:
    root = install_root(state_dir)
    cli, plugin = root / "bin" / "pulumi", plugin_path(state_dir)
    src = sources()
    key = source_key(src)
    stamp = root / STAMP
    if cli.is_file() and plugin.is_file() and stamp.is_file() and stamp.read_text() == key:
        return Built(root, cli, plugin, cached=True)
    go = shutil.which("go")
    if go is None:
        raise EngineMissingError(
            "`hosting engine build` needs the go command, which is not on PATH",
            "install Go 1.25 or newer (Debian: golang-go from bookworm-backports), "
            "or use `hosting engine install` where downloads work",
        )
    work = root / "src"
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(src, work, ignore=shutil.ignore_patterns("__pycache__", "schema.json"))
    log = root / "build.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("")
    stamp.unlink(missing_ok=True)

    def run(what: str, args: list[str], cwd: Path, env: dict[str, str] | None = None) -> None:
        progress(what)
        with log.open("a") as out:
            out.write(f"$ {' '.join(args)}  (in {cwd})\n")
            out.flush()
            done = subprocess.run(
                args,
                cwd=cwd,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, "CGO_ENABLED": "0", **(env or {})},
                check=False,
            )
        if done.returncode != 0:
            raise EngineMissingError(
                f"{what} failed: {_reason(log.read_text())}", f"the whole output is in {log}"
            )

    def go_build(what: str, cwd: Path, package: str, out: Path, tags: str, ldflags: str) -> None:
        args = [go, "build", "-trimpath", "-tags", tags, "-ldflags", ldflags, "-o", str(out)]
        run(what, [*args, package], cwd)

    go_build(
        f"building the Pulumi CLI v{CLI_VERSION}",
        work / "cli",
        GO_PACKAGE_CLI,
        cli,
        "osusergo,grpcnotrace",
        f"-s -w -X {GO_VERSION_SYMBOL}=v{CLI_VERSION}",
    )
    tools, docker = root / "build", work / "docker"
    tfgen, built_plugin = tools / "tfgen", tools / "pulumi-resource-docker"
    # no_compose leaves out the upstream's compose resources, which we never declare.
    go_build(
        "building the docker provider's schema generator",
        docker,
        "./cmd/pulumi-tfgen-docker",
        tfgen,
        "no_compose",
        "-s -w",
    )
    schema_dir = docker / "cmd" / "pulumi-resource-docker"
    run(
        "generating the docker provider's schema",
        [str(tfgen), "schema", "--skip-docs", "--skip-examples", "--out", str(schema_dir)],
        docker,
        {"VERSION": DOCKER_PLUGIN_VERSION},
    )
    go_build(
        f"building the docker plugin v{DOCKER_PLUGIN_VERSION}",
        docker,
        "./cmd/pulumi-resource-docker",
        built_plugin,
        "no_compose",
        f"-s -w -X main.version={DOCKER_PLUGIN_VERSION}",
    )
    install = ["plugin", "install", "resource", "docker", DOCKER_PLUGIN_VERSION, "--reinstall"]
    run(
        f"installing the docker plugin v{DOCKER_PLUGIN_VERSION}",
        [str(cli), *install, "--file", str(built_plugin)],
        root,
        {"PULUMI_HOME": str(pulumi_home(state_dir)), "PULUMI_SKIP_UPDATE_CHECK": "true"},
    )
    if not plugin.is_file():
        raise EngineMissingError(
            f"the docker plugin was installed, but not at {plugin}",
            f"see {log}",
        )
    stamp.write_text(key)
    return Built(root, cli, plugin, cached=False)


_PROXY_REFUSAL = re.compile(r"(\S+@\S+): reading \S+: (\d{3} [A-Za-z ]+)")
_COMPILE_ERROR = re.compile(r"\.go:\d+:\d+: ")


def _reason(output: str) -> str:
    """The one line of a Go build's output that says why it failed."""
    refused = _PROXY_REFUSAL.search(output)
    if refused:
        return f"the Go module proxy refused {refused.group(1)} ({refused.group(2).strip()})"
    noise = ("$ ", "go: downloading", "go: finding")
    lines = [ln.strip() for ln in output.splitlines() if ln.strip() and not ln.startswith(noise)]
    for wanted in (lambda ln: bool(_COMPILE_ERROR.search(ln)), lambda ln: ln.startswith("go: ")):
        for line in lines:
            if wanted(line):
                return line
    return lines[-1] if lines else "no output"
