"""A source build's dependencies, installed by the host's own npm/pnpm/yarn or pip.

Build containers cannot reach the outside (the DOCKER-USER rule, or an operator's choice):
the host can, so it fetches the dependencies and the build copies them in. The host never
runs the app's code while doing so: npm/pnpm/yarn with `--ignore-scripts`, pip downloads
wheels only (`--only-binary=:all:`), so no setup.py or install script runs outside a
container. Results are cached by the lockfile's content: an unchanged lockfile reuses them,
offline, in no time.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from hosting.errors import BuildError
from hosting.sources.detect import Detected, python_requirements

Emit = Callable[[str], None]
_INSTALL = {
    "npm": (["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund"], ["--omit=dev"]),
    "pnpm": (["pnpm", "install", "--frozen-lockfile", "--ignore-scripts"], ["--prod"]),
    "yarn": (["yarn", "install", "--frozen-lockfile", "--ignore-scripts"], ["--production"]),
}
_NODE_FILES = ("package.json", ".npmrc", ".yarnrc", ".yarnrc.yml")
_PY_VERSION_RE = re.compile(r"^\d+\.\d+$")


def key(folder: Path, detected: Detected, runtime_version: str | None) -> str:
    """What the installed dependencies depend on: the manifest, the lockfile, the tool."""
    h = hashlib.sha256(f"{detected.manager}\0{runtime_version}\0{detected.build}\0".encode())
    if detected.language == "node":
        for name in (*_NODE_FILES, detected.lockfile or ""):
            path = folder / name
            h.update(name.encode() + b"\0" + (path.read_bytes() if path.is_file() else b"-"))
    else:
        h.update("\n".join(python_requirements(folder)).encode())
    return h.hexdigest()[:20]


def install(
    folder: Path,
    detected: Detected,
    runtime_version: str | None,
    cache: Path,
    emit: Emit,
) -> Path:
    """The folder to copy into the build context as `deps/`, from the cache when it has it."""
    target = cache / detected.language / key(folder, detected, runtime_version)
    if (target / ".complete").is_file():
        emit(f"dependencies: unchanged lockfile, reusing {target}")
        return target
    cache.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".deps-", dir=cache))
    try:
        if detected.language == "node":
            _node(folder, detected, work, emit)
        else:
            _python(folder, runtime_version, work, emit)
        (work / ".complete").touch()
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(target, ignore_errors=True)
        work.rename(target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def _node(folder: Path, d: Detected, work: Path, emit: Emit) -> None:
    # prod: what runs; full (only when there is a build): what the build script needs too
    flavours = [("prod", True), *([("full", False)] if d.build is not None else [])]
    for name, production in flavours:
        dest = work / name
        dest.mkdir()
        for f in (*_NODE_FILES, d.lockfile or ""):
            if f and (folder / f).is_file():
                shutil.copy2(folder / f, dest / f)
        if d.lockfile is None:  # no dependencies at all (detect refuses the other case)
            (dest / "node_modules").mkdir()
            continue
        base, prod_flag = _INSTALL[d.manager]
        if shutil.which(base[0]) is None:
            raise BuildError(
                f"{folder}/{d.lockfile} asks for {d.manager}, which is not on this host's PATH",
                f"install {d.manager} on the host, or use npm and keep package-lock.json",
            )
        _run([*base, *(prod_flag if production else [])], dest, emit)
        for f in (*_NODE_FILES, d.lockfile):  # only node_modules goes into the image
            (dest / f).unlink(missing_ok=True)
        (dest / "node_modules").mkdir(exist_ok=True)


def _python(folder: Path, runtime_version: str | None, work: Path, emit: Emit) -> None:
    requirements = python_requirements(folder)
    (work / "wheels").mkdir()
    (work / "requirements.txt").write_text("".join(f"{r}\n" for r in requirements))
    if not requirements:
        return
    args = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check"]
    args += ["--only-binary=:all:", "--dest", str(work / "wheels"), "-r", "requirements.txt"]
    if runtime_version and _PY_VERSION_RE.match(runtime_version):
        args += ["--python-version", runtime_version]  # wheels for the image's Python
    _run(args, work, emit)


def _run(args: list[str], cwd: Path, emit: Emit) -> None:
    emit(f"$ {' '.join(args)}")
    env = {**os.environ, "npm_config_update_notifier": "false"}
    proc = subprocess.Popen(
        args, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    with proc:  # closes the pipe
        assert proc.stdout is not None
        for line in proc.stdout:
            emit(line.rstrip("\n"))
        code = proc.wait()
    if code != 0:
        raise BuildError(f"installing dependencies failed: `{' '.join(args[:3])}` exited {code}")
