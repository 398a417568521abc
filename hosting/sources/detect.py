"""What a `source:` folder is and how to build and start it, from its files alone (issue 17).

Pure: it reads the folder and decides; it runs nothing. Anything it cannot tell is a
BuildError that names what it looked for, so the user knows which file to add.
"""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from hosting.errors import BuildError

NODE_LOCKFILES = (
    ("package-lock.json", "npm"),
    ("npm-shrinkwrap.json", "npm"),
    ("pnpm-lock.yaml", "pnpm"),
    ("yarn.lock", "yarn"),
)
# A build with no server: the framework's standard output folder, served by the edge.
STATIC_OUTPUT = (("vite", "dist"), ("react-scripts", "build"))
WSGI_FILES = ("wsgi.py", "app.py", "main.py")
ASGI_FILES = ("asgi.py", "main.py", "app.py")
APP_ATTR_RE = re.compile(
    r"^(?:(?:async\s+)?def\s+(?P<f>application|app)\s*\(|(?P<v>application|app)\s*(?::[^=\n]*)?=)",
    re.MULTILINE,
)
REQ_NAME_RE = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


@dataclass(frozen=True)
class Detected:
    language: Literal["node", "python"]
    manager: str  # npm | pnpm | yarn | pip
    lockfile: str | None  # the file whose content decides the dependencies
    build: str | None  # a shell command run in the build stage
    start: str | None  # a shell command; None: a static site served from `static_dir`
    static_dir: str | None
    found: tuple[str, ...]  # what decided, for the build log

    @property
    def static(self) -> bool:
        return self.start is None


def detect(folder: Path, language: str | None = None) -> Detected:
    """`language`: the deployment's `runtime` names one; otherwise the files decide."""
    node, python = (folder / "package.json").is_file(), _python_manifest(folder) is not None
    if language == "node" or (language is None and node and not python):
        if not node:
            raise BuildError(f"{folder}: runtime node, but there is no package.json")
        return _node(folder)
    if language == "python" or (language is None and python and not node):
        if not python:
            raise BuildError(
                f"{folder}: runtime python, but there is no requirements.txt or pyproject.toml"
            )
        return _python(folder)
    if node and python:
        raise BuildError(
            f"{folder} has both package.json and a Python manifest",
            'say which to build with `runtime: {node: "20"}` or `runtime: {python: "3.11"}`',
        )
    raise BuildError(
        f"{folder}: no Node or Python app found (looked for package.json, requirements.txt, "
        "pyproject.toml)",
        "add one of them, or deploy with `build:` and a Dockerfile",
    )


# -- Node -------------------------------------------------------------------------------------
def _node(folder: Path) -> Detected:
    manifest = _json(folder / "package.json")
    scripts = manifest.get("scripts") if isinstance(manifest.get("scripts"), dict) else {}
    assert isinstance(scripts, dict)
    deps = {**_dict(manifest.get("dependencies")), **_dict(manifest.get("devDependencies"))}
    found = ["package.json"]
    lockfile, manager = None, "npm"
    for name, tool in NODE_LOCKFILES:
        if (folder / name).is_file():
            lockfile, manager = name, tool
            found.append(name)
            break
    if lockfile is None and deps:
        raise BuildError(
            f"{folder}/package.json has dependencies but no lockfile (looked for "
            f"{', '.join(n for n, _ in NODE_LOCKFILES)})",
            "run `npm install` there and keep package-lock.json beside package.json",
        )
    build = _str(scripts.get("build"))
    if build:
        found.append("scripts.build")
    start: str | None = None
    static_dir: str | None = None
    if _str(scripts.get("start")):
        start = _str(scripts.get("start"))
        found.append("scripts.start")
    elif _str(manifest.get("main")):
        start = f"node {shlex.quote(str(manifest['main']))}"
        found.append("main")
    elif (folder / "server.js").is_file():  # what `npm start` runs without a start script
        start = "node server.js"
        found.append("server.js")
    elif build:
        static_dir = next((out for dep, out in STATIC_OUTPUT if dep in deps), "dist")
        found.append(f"no server: static output {static_dir}/")
    else:
        raise BuildError(
            f"{folder}/package.json: nothing to start or build (looked for scripts.start, "
            "main, server.js and scripts.build)",
            'add `"start": "node server.js"` to scripts, or a build script for a static site',
        )
    return Detected("node", manager, lockfile, build, start, static_dir, tuple(found))


def _json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BuildError(f"{path}: not readable JSON ({exc})") from None
    if not isinstance(data, dict):
        raise BuildError(f"{path}: not a JSON object")
    return data


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


# -- Python -----------------------------------------------------------------------------------
def _python_manifest(folder: Path) -> str | None:
    for name in ("requirements.txt", "pyproject.toml"):
        if (folder / name).is_file():
            return name
    return None


def python_requirements(folder: Path) -> list[str]:
    """The requirement lines: requirements.txt as written, or pyproject's
    `[project] dependencies` (the project itself is not installed: it runs from /app)."""
    req = folder / "requirements.txt"
    if req.is_file():
        return [
            line.strip()
            for line in req.read_text(encoding="utf-8").splitlines()
            if line.strip() and not line.lstrip().startswith("#")
        ]
    try:
        data = tomllib.loads((folder / "pyproject.toml").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise BuildError(f"{folder}/pyproject.toml: not readable TOML ({exc})") from None
    deps = _dict(data.get("project")).get("dependencies", [])
    return [d for d in deps if isinstance(d, str)]


def _python(folder: Path) -> Detected:
    manifest = _python_manifest(folder)
    assert manifest is not None
    found = [manifest]
    names = {
        m.group(1).lower().replace("_", "-")
        for line in python_requirements(folder)
        if (m := REQ_NAME_RE.match(line))
    }
    start = _procfile_web(folder)
    if start is not None:
        found.append("Procfile web:")
    else:
        for server, files, kind in (
            ("gunicorn", WSGI_FILES, "WSGI"),
            ("uvicorn", ASGI_FILES, "ASGI"),
        ):
            if server not in names:
                continue
            module, attr = _app_object(folder, files, server, kind)
            bind = "--bind 0.0.0.0:$PORT" if server == "gunicorn" else "--host 0.0.0.0 --port $PORT"
            start = f"{server} {bind} {module}:{attr}"
            found.append(f"{server} in {manifest}, {module}.py")
            break
    if start is None:
        raise BuildError(
            f"{folder}: no way to start the app (looked for a Procfile `web:` line, and for "
            f"gunicorn or uvicorn in {manifest})",
            "add a Procfile with `web: python app.py`, or gunicorn/uvicorn to the requirements",
        )
    return Detected("python", "pip", manifest, None, start, None, tuple(found))


def _procfile_web(folder: Path) -> str | None:
    procfile = folder / "Procfile"
    if not procfile.is_file():
        return None
    for line in procfile.read_text(encoding="utf-8").splitlines():
        name, sep, command = line.partition(":")
        if sep and name.strip() == "web" and command.strip():
            return command.strip()
    return None


def _app_object(folder: Path, files: tuple[str, ...], server: str, kind: str) -> tuple[str, str]:
    for name in files:
        path = folder / name
        if path.is_file():
            m = APP_ATTR_RE.search(path.read_text(encoding="utf-8", errors="replace"))
            if m:
                return name.removesuffix(".py"), m.group("f") or m.group("v")
    raise BuildError(
        f"{folder}: {server} is in the requirements, but no {kind} app was found (looked for "
        f"`app` or `application`, assigned or defined, in {', '.join(files)})",
        "or start it yourself with a Procfile `web:` line",
    )
