"""Source builds (issue 17): cold build, rebuild after a one-line change, and an unchanged
source, for each sample app in examples/apps, on the real Docker engine.

- cold: an empty dependency cache (the host's npm/pip fetch from the registries, their own
  HTTP caches as the machine has them) and every layer built anew (`docker build --no-cache`);
- rebuild: one line of the app's source changed; dependencies and their layer cached;
- unchanged: the tag exists, nothing is built.
Baseline, measured in the same run: `docker build` of `FROM <runtime>` + `COPY app/`, the floor
of any build of that app on this engine (the classic builder: no BuildKit here).
Run: python bench/bench_sources.py  (needs the local runtime images: bash .ci/images.sh)
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from hosting.sources.build import plan_build, run_build
from hosting.spec import loads

REPO = Path(__file__).resolve().parent.parent
APPS = {
    "node-server": "server.js",
    "vite-site": "src/main.js",
    "python-wsgi": "app.py",
    "python-procfile": "app.py",
}
SPEC = """
version: 1
platform:
  name: bench
  domain: apps.test
  public_ipv4: 127.0.0.1
  runtimes:
    node: {"20": "hosting-test/node:20"}
    python: {"3.11": "hosting-test/python:3.11"}
tenants:
  acme:
    name: Acme
    email: a@acme.test
    plan: pro
    started: 2026-01-01
    deployments:
"""
HOST = "unix:///var/run/docker.sock"


def docker(*args: str) -> None:
    subprocess.run(["docker", *args], capture_output=True, check=False)


def timed(fn: object) -> float:
    start = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - start


def baseline(runtime: str, app: Path, work: Path) -> float:
    ctx = work / "baseline"
    shutil.rmtree(ctx, ignore_errors=True)
    shutil.copytree(app, ctx / "app", ignore=shutil.ignore_patterns("node_modules", "dist"))
    (ctx / "Dockerfile").write_text(f"FROM {runtime}\nCOPY app/ /app/\n")
    tag = "hosting-bench/baseline:latest"
    seconds = timed(
        lambda: subprocess.run(
            ["docker", "build", "--network", "none", "-t", tag, str(ctx)],
            capture_output=True,
            check=True,
        )
    )
    docker("image", "rm", "-f", tag)
    return seconds


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-sources-"))
    apps = work / "apps"
    shutil.copytree(REPO / "examples" / "apps", apps)
    deployments = "".join(f"      {n}: {{type: web, source: ./{n}}}\n" for n in APPS)
    spec = loads(SPEC + deployments, base_dir=apps)
    rows = []
    try:
        for name, edited in APPS.items():
            state, cache = work / "state", work / f"deps-{name}"

            def build(
                name: str = name, state: Path = state, cache: Path = cache, layers: bool = True
            ) -> bool:
                sb = plan_build(spec, "acme", name, apps)
                return run_build(
                    sb, docker_host=HOST, state_dir=state, deps_cache=cache, layer_cache=layers
                )

            first = plan_build(spec, "acme", name, apps)
            docker("image", "rm", "-f", first.tag)
            floor = baseline(first.base, apps / name, work)
            cold = timed(lambda build=build: build(layers=False))
            source = apps / name / edited
            comment = "#" if edited.endswith(".py") else "//"
            source.write_text(source.read_text() + f"{comment} one more line\n")
            rebuild = timed(build)
            unchanged = timed(build)
            rows.append((name, floor, cold, rebuild, unchanged))
            for tag in {first.tag, plan_build(spec, "acme", name, apps).tag}:
                docker("image", "rm", "-f", tag)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("| sample | baseline build | cold | rebuild (one line) | unchanged |")
    print("|---|---|---|---|---|")
    for name, floor, cold, rebuild, unchanged in rows:
        print(
            f"| {name} | {floor:.1f} s | {cold:.1f} s ({cold / floor:.1f}×) | "
            f"{rebuild:.1f} s ({rebuild / floor:.1f}×) | {unchanged:.2f} s |"
        )


if __name__ == "__main__":
    main()
