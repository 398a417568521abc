"""Build a `source:` deployment into an image tagged by its content (issue 17).

`plan_build` is pure but for reading the folder: the tag it computes is what the Pulumi program
runs, so `plan` sees no change while the source is unchanged. `run_build` does the work before
the engine runs, with the Docker CLI: host-installed dependencies (deps.py), a staged context,
the generated Dockerfile, `--network none`. An image already tagged is not rebuilt. A failed
build raises before anything is replaced: the running version keeps serving.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hosting.errors import BuildError
from hosting.sources import deps
from hosting.sources.detect import Detected, detect
from hosting.sources.dockerfile import PROBE_FILE, PROBES, dockerfile
from hosting.spec.models import SOURCE_PORT, ApiDeployment, Spec, WebDeployment
from hosting.stacks.build_context import SKIPPED, digest

Emit = Callable[[str], None]
TAIL = 20  # lines of a failed build's log shown with the error


@dataclass(frozen=True)
class SourceBuild:
    tenant: str
    deployment: str
    folder: Path
    detected: Detected
    base: str
    runtime_version: str | None
    dockerfile: str
    tag: str
    # The tenant's plan limits hold for its build too: the build runs the tenant's code.
    memory_mb: int = 1024
    cpus: float = 1.0

    @property
    def key(self) -> str:
        return f"{self.tenant}/{self.deployment}"


def log_path(state_dir: Path, tenant: str, deployment: str) -> Path:
    return state_dir / "logs" / "build" / f"{tenant}_{deployment}.log"


def building_marker(state_dir: Path, tenant: str, deployment: str) -> Path:
    """Present while a build runs: `status` shows `building`."""
    return log_path(state_dir, tenant, deployment).with_suffix(".building")


def site_dir(state_dir: Path, tenant: str, deployment: str) -> Path:
    """Where a static build's output lives on the host; the edge serves it like `static`."""
    return state_dir / "sites" / f"{tenant}_{deployment}"


def plan_build(spec: Spec, tenant: str, deployment: str, base_dir: Path) -> SourceBuild:
    dep = spec.tenants[tenant].deployments[deployment]
    assert isinstance(dep, WebDeployment | ApiDeployment) and dep.source is not None
    folder = (base_dir / dep.source).resolve()
    language = dep.runtime.language if dep.runtime else None
    detected = detect(folder, language)
    version = dep.runtime.version if dep.runtime else None
    runtimes = spec.platform.runtimes
    base = runtimes.image(detected.language, version)
    if version is None:
        version = next(iter(getattr(runtimes, detected.language)))
    text = dockerfile(detected, base, dep.listen_port or SOURCE_PORT)
    probe = PROBES[detected.language]
    content = hashlib.sha256(f"{digest(folder)}\0{text}\0{probe}".encode()).hexdigest()[:16]
    tag = f"hosting-src/{spec.platform.name}_{tenant}_{deployment}:{content}"
    limits = spec.limits_of(spec.tenants[tenant])
    return SourceBuild(
        tenant,
        deployment,
        folder,
        detected,
        base,
        version,
        text,
        tag,
        limits.memory_mb,
        limits.cpus,
    )


def source_builds(spec: Spec, base_dir: Path) -> list[SourceBuild]:
    return [
        plan_build(spec, tid, did, base_dir)
        for tid, tenant in spec.tenants.items()
        for did, dep in tenant.deployments.items()
        if isinstance(dep, WebDeployment | ApiDeployment) and dep.source and not dep.stopped
    ]


def static_sites(spec: Spec, base_dir: Path) -> frozenset[tuple[str, str]]:
    """The `source:` deployments whose build is a static site: the edge serves them. A folder
    that cannot be built is left out (apply and plan say why; status need not)."""
    out = set()
    for tid, tenant in spec.tenants.items():
        for did, dep in tenant.deployments.items():
            if isinstance(dep, WebDeployment | ApiDeployment) and dep.source is not None:
                try:
                    if plan_build(spec, tid, did, base_dir).detected.static:
                        out.add((tid, did))
                except BuildError:
                    continue
    return frozenset(out)


def build_all(
    spec: Spec,
    *,
    base_dir: Path,
    state_dir: Path,
    tenant: str | None = None,
    on_line: Callable[[str, str], None] | None = None,
) -> list[str]:
    """Build every running `source:` deployment (of `tenant`, if given) whose image is
    missing, before the engine runs: a failure raises here, and nothing running is touched.
    The keys of the ones built."""
    cache = Path(os.environ.get("HOSTING_DEPS_CACHE") or state_dir / "cache" / "deps")
    built = []
    for sb in source_builds(spec, base_dir):
        if tenant is not None and sb.tenant != tenant:
            continue
        emit = None if on_line is None else (lambda line, key=sb.key: on_line(key, line))
        if run_build(
            sb,
            docker_host=spec.platform.docker.host,
            state_dir=state_dir,
            deps_cache=cache,
            on_line=emit,
        ):
            built.append(sb.key)
    return built


def image_exists(tag: str, docker_host: str) -> bool:
    return (
        subprocess.run(
            ["docker", "image", "inspect", tag],
            env=_env(docker_host),
            capture_output=True,
            check=False,
        ).returncode
        == 0
    )


def run_build(
    sb: SourceBuild,
    *,
    docker_host: str,
    state_dir: Path,
    deps_cache: Path,
    on_line: Emit | None = None,
    layer_cache: bool = True,
) -> bool:
    """Build `sb.tag` unless it exists; True when a build ran. A static site's output is
    then copied to `site_dir`. Every line goes to the build log (and to `on_line`).
    `layer_cache=False`: every layer built anew (the benchmark's cold build)."""
    site = site_dir(state_dir, sb.tenant, sb.deployment)
    if image_exists(sb.tag, docker_host) and (not sb.detected.static or _site_tag(site) == sb.tag):
        return False
    log = log_path(state_dir, sb.tenant, sb.deployment)
    log.parent.mkdir(parents=True, exist_ok=True)
    marker = building_marker(state_dir, sb.tenant, sb.deployment)
    marker.touch()
    try:
        with log.open("w", encoding="utf-8") as out:

            def emit(line: str) -> None:
                out.write(line + "\n")
                out.flush()  # `hosting logs --build --follow` reads as it grows
                if on_line is not None:
                    on_line(line)

            try:
                _build(sb, docker_host, state_dir, deps_cache, emit, layer_cache)
                if sb.detected.static:
                    _extract_site(sb, docker_host, site, emit)
            except BuildError as exc:
                emit(f"BUILD FAILED: {exc.message}")
                out.flush()
                tail = tuple(log.read_text(encoding="utf-8").splitlines()[-TAIL:])
                raise BuildError(
                    f"building {sb.key} failed", exc.hint, log_tail=tail, log_path=log
                ) from None
    finally:
        marker.unlink(missing_ok=True)
    return True


def _build(
    sb: SourceBuild, docker_host: str, state_dir: Path, cache: Path, emit: Emit, layer_cache: bool
) -> None:
    started = time.monotonic()
    emit(f"# source build of {sb.key}: {sb.folder} → {sb.tag}")
    emit(f"# detected: {sb.detected.language} ({', '.join(sb.detected.found)})")
    installed = deps.install(sb.folder, sb.detected, sb.runtime_version, cache, emit)
    context = state_dir / "builds" / f"{sb.tenant}_{sb.deployment}"
    shutil.rmtree(context, ignore_errors=True)
    context.mkdir(parents=True)
    # hard links where the file system allows: node_modules has thousands of files
    _copy(installed, context / "deps")
    _copy(sb.folder, context / "app", skip=SKIPPED)
    (context / "Dockerfile").write_text(sb.dockerfile)
    probe = context / PROBE_FILE
    probe.write_text(PROBES[sb.detected.language])
    probe.chmod(0o755)
    emit("# the generated Dockerfile:")
    for line in sb.dockerfile.splitlines():
        emit(f"    {line}")
    args = ["docker", "build", "--network", "none", "--rm", "--force-rm", "-t", sb.tag]
    args += [
        "--label",
        f"hosting.tenant={sb.tenant}",
        "--label",
        f"hosting.deployment={sb.deployment}",
    ]
    args += ["--memory", f"{sb.memory_mb}m", "--memory-swap", f"{sb.memory_mb}m"]
    args += ["--cpu-period", "100000", "--cpu-quota", str(int(sb.cpus * 100000))]
    args += [] if layer_cache else ["--no-cache"]
    args += ["-f", str(context / "Dockerfile"), str(context)]
    emit(f"$ {' '.join(args)}")
    proc = subprocess.Popen(
        args,
        env=_env(docker_host),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
    )
    with proc:  # closes the pipe
        assert proc.stdout is not None
        for line in proc.stdout:
            emit(line.rstrip("\n"))
        code = proc.wait()
    if code != 0:
        raise BuildError(f"docker build exited {code}", "the lines above are the build's own")
    shutil.rmtree(context, ignore_errors=True)
    emit(f"# built {sb.tag} in {time.monotonic() - started:.1f}s")


def _extract_site(sb: SourceBuild, docker_host: str, site: Path, emit: Emit) -> None:
    """Copy the static output out of the image into the folder the edge serves."""
    env = _env(docker_host)
    name = f"hosting-site-{sb.tenant}-{sb.deployment}-{os.getpid()}"
    fresh = site.with_name(site.name + ".new")
    shutil.rmtree(fresh, ignore_errors=True)
    fresh.mkdir(parents=True)
    try:
        subprocess.run(
            ["docker", "create", "--name", name, sb.tag, "/none"],
            env=env,
            capture_output=True,
            check=True,
        )
        subprocess.run(
            ["docker", "cp", f"{name}:/site/.", str(fresh)],
            env=env,
            capture_output=True,
            check=True,
        )
    except subprocess.CalledProcessError as exc:
        raise BuildError(f"copying the static site out failed: {exc.stderr.strip()}") from None
    finally:
        subprocess.run(["docker", "rm", "-f", name], env=env, capture_output=True, check=False)
    # The edge binds `site` itself: its contents are swapped in place, the folder stays.
    site.mkdir(parents=True, exist_ok=True)
    for old in list(site.iterdir()):
        shutil.rmtree(old) if old.is_dir() and not old.is_symlink() else old.unlink()
    for new in fresh.iterdir():
        new.rename(site / new.name)
    fresh.rmdir()
    _site_marker(site).write_text(sb.tag + "\n")  # beside the folder: the edge serves its inside
    emit(f"# static site: {sb.detected.static_dir}/ → {site}")


def _site_marker(site: Path) -> Path:
    return site.with_name(site.name + ".tag")


def _site_tag(site: Path) -> str | None:
    marker = _site_marker(site)
    return marker.read_text().strip() if marker.is_file() else None


def _copy(src: Path, dest: Path, skip: frozenset[str] = frozenset()) -> None:
    def ignore(_: str, names: list[str]) -> set[str]:
        return {n for n in names if n in skip}

    try:
        shutil.copytree(src, dest, symlinks=True, ignore=ignore, copy_function=os.link)
    except (shutil.Error, OSError):  # another file system: copy instead
        shutil.rmtree(dest, ignore_errors=True)
        shutil.copytree(src, dest, symlinks=True, ignore=ignore)


def _env(docker_host: str) -> dict[str, str]:
    return {**os.environ, "DOCKER_HOST": docker_host}
