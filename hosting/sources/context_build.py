"""`build:` deployments on a swarm, built before the engine runs (issue 11).

On one engine the program builds them (a RemoteImage). A swarm's tasks run on other nodes,
which must be given the image before a service names it (hosting.provider.swarm_images), so
here the image is built first, with the Docker CLI on the manager's engine, under the content
tag the program names (`image_of`). A tag already there is not built again. A failed build
raises before anything changes: the running version keeps serving.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

from hosting.errors import BuildError
from hosting.sources.build import TAIL, image_exists, log_path
from hosting.spec.models import ApiDeployment, Spec, WebDeployment
from hosting.stacks.containers import labels
from hosting.stacks.desired import image_of


def built_images(spec: Spec, base_dir: Path) -> dict[str, str]:
    """Every running `build:` deployment ("tenant/deployment") → the tag it runs."""
    return {
        f"{tid}/{did}": image_of(spec, tid, did, base_dir)
        for tid, tenant in spec.tenants.items()
        for did, dep in tenant.deployments.items()
        if isinstance(dep, WebDeployment | ApiDeployment) and dep.build and not dep.stopped
    }


def build_contexts(
    spec: Spec,
    *,
    base_dir: Path,
    state_dir: Path,
    tenant: str | None = None,
    on_line: Callable[[str, str], None] | None = None,
) -> list[str]:
    """Build each missing `build:` image (of `tenant`, if given); the keys of those built."""
    host = spec.platform.docker.host
    built = []
    for key, tag in built_images(spec, base_dir).items():
        tid, did = key.split("/")
        if (tenant is not None and tid != tenant) or image_exists(tag, host):
            continue
        dep = spec.tenants[tid].deployments[did]
        assert isinstance(dep, WebDeployment | ApiDeployment) and dep.build is not None
        args = ["docker", "build", "--rm", "--force-rm", "-t", tag, "-f", dep.build.dockerfile]
        for k, v in labels(tid, did, dep.type).items():
            args += ["--label", f"{k}={v}"]
        for k, v in dep.build.args.items():
            args += ["--build-arg", f"{k}={v}"]
        args.append(".")
        log = log_path(state_dir, tid, did)
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("w", encoding="utf-8") as out:
            out.write(f"# build of {key}: {base_dir / dep.build.context} → {tag}\n")
            proc = subprocess.Popen(
                args,
                cwd=(base_dir / dep.build.context).resolve(),
                env={**os.environ, "DOCKER_HOST": host},
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                errors="replace",
            )
            with proc:
                assert proc.stdout is not None
                for line in proc.stdout:
                    out.write(line)
                    out.flush()  # `hosting logs --build --follow` reads as it grows
                    if on_line is not None:
                        on_line(key, line.rstrip("\n"))
                code = proc.wait()
        if code != 0:
            tail = tuple(log.read_text(encoding="utf-8").splitlines()[-TAIL:])
            raise BuildError(
                f"building {key} failed: docker build exited {code}",
                "the lines above are the build's own",
                log_tail=tail,
                log_path=log,
            )
        built.append(key)
    return built
