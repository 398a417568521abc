"""`build:` on a swarm is built before the engine runs (hosting.sources.context_build), on
the real host engine: under its content tag, once, and a failure says why with its log."""

from __future__ import annotations

import secrets
import subprocess
from pathlib import Path

import pytest

from hosting.errors import BuildError
from hosting.sources.context_build import build_contexts, built_images
from hosting.spec import loads

pytestmark = pytest.mark.docker

SPEC = """
version: 1
platform:
  name: {platform}
  domain: apps.localhost
  public_ipv4: 127.0.0.1
  target: swarm
tenants:
  acme:
    name: Acme
    email: a@example.test
    plan: starter
    started: 2026-01-01
    deployments:
      api:
        type: api
        build: {{context: ./api, args: {{GREETING: hello}}}}
        port: 8080
"""


def test_built_once_under_its_content_tag_and_a_failure_keeps_its_log(
    docker_engine: str, tmp_path: Path
) -> None:
    platform = "cb" + secrets.token_hex(3)
    (tmp_path / "api").mkdir()
    dockerfile = tmp_path / "api" / "Dockerfile"
    dockerfile.write_text(
        "FROM hosting-test/busybox:latest\nARG GREETING\nRUN echo $GREETING > /www/greeting\n"
    )
    spec = loads(SPEC.format(platform=platform), base_dir=tmp_path)
    state = tmp_path / ".hosting"
    [tag] = built_images(spec, tmp_path).values()
    try:
        lines: list[str] = []
        built = build_contexts(
            spec, base_dir=tmp_path, state_dir=state, on_line=lambda k, line: lines.append(k)
        )
        assert built == ["acme/api"] and set(lines) == {"acme/api"}
        greeting = subprocess.run(
            ["docker", "run", "--rm", tag, "cat", "/www/greeting"],
            capture_output=True,
            text=True,
            check=True,
        )
        assert greeting.stdout == "hello\n"  # the build arg reached the build
        labels = subprocess.run(
            ["docker", "image", "inspect", "--format", "{{json .Config.Labels}}", tag],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert '"hosting.tenant":"acme"' in labels
        assert build_contexts(spec, base_dir=tmp_path, state_dir=state) == []  # tag there
        dockerfile.write_text("FROM hosting-test/busybox:latest\nRUN exit 3\n")
        broken = loads(SPEC.format(platform=platform), base_dir=tmp_path)
        [new_tag] = built_images(broken, tmp_path).values()
        assert new_tag != tag
        with pytest.raises(BuildError) as err:
            build_contexts(broken, base_dir=tmp_path, state_dir=state)
        assert "building acme/api failed" in err.value.message
        assert any("exit 3" in line for line in err.value.log_tail)
    finally:
        subprocess.run(["docker", "rmi", "-f", tag], capture_output=True, check=False)
