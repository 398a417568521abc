"""Detection from fixture trees: which language, package manager, build and start command, and
a clear refusal naming what was looked for (issue 17)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hosting.errors import BuildError
from hosting.sources.detect import detect

EXAMPLES = Path(__file__).parents[2] / "examples" / "apps"


def tree(root: Path, files: dict[str, str | dict[str, object]]) -> Path:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content if isinstance(content, str) else json.dumps(content))
    return root


def test_node_server_with_npm_lockfile(tmp_path: Path) -> None:
    d = detect(
        tree(
            tmp_path,
            {
                "package.json": {
                    "scripts": {"start": "node server.js"},
                    "dependencies": {"a": "1"},
                },
                "package-lock.json": "{}",
            },
        )
    )
    assert (d.language, d.manager, d.lockfile) == ("node", "npm", "package-lock.json")
    assert (d.build, d.start, d.static_dir) == (None, "node server.js", None)


@pytest.mark.parametrize(
    ("lockfile", "manager"), [("pnpm-lock.yaml", "pnpm"), ("yarn.lock", "yarn")]
)
def test_the_lockfile_names_the_package_manager(
    tmp_path: Path, lockfile: str, manager: str
) -> None:
    d = detect(tree(tmp_path, {"package.json": {"main": "index.js"}, lockfile: ""}))
    assert (d.manager, d.lockfile, d.start) == (manager, lockfile, "node index.js")


def test_npm_lockfile_wins_over_others(tmp_path: Path) -> None:
    files = {"package.json": {"main": "i.js"}, "package-lock.json": "{}", "yarn.lock": ""}
    assert detect(tree(tmp_path, files)).manager == "npm"


def test_server_js_is_what_npm_start_runs_without_a_script(tmp_path: Path) -> None:
    d = detect(tree(tmp_path, {"package.json": {}, "server.js": ""}))
    assert (d.start, d.lockfile) == ("node server.js", None)


def test_start_script_wins_over_main(tmp_path: Path) -> None:
    d = detect(
        tree(tmp_path, {"package.json": {"main": "a.js", "scripts": {"start": "node b.js"}}})
    )
    assert d.start == "node b.js"


@pytest.mark.parametrize(
    ("dependency", "folder"), [("vite", "dist"), ("react-scripts", "build"), ("left-pad", "dist")]
)
def test_a_build_without_a_server_is_a_static_site(
    tmp_path: Path, dependency: str, folder: str
) -> None:
    manifest = {"scripts": {"build": "x build"}, "devDependencies": {dependency: "1"}}
    d = detect(tree(tmp_path, {"package.json": manifest, "package-lock.json": "{}"}))
    assert (d.static, d.static_dir, d.build, d.start) == (True, folder, "x build", None)


def test_build_and_start_is_a_server_that_builds_first(tmp_path: Path) -> None:
    manifest = {"scripts": {"build": "tsc", "start": "node dist/index.js"}}
    d = detect(tree(tmp_path, {"package.json": manifest}))
    assert (d.build, d.start, d.static) == ("tsc", "node dist/index.js", False)


def test_dependencies_without_a_lockfile_are_refused(tmp_path: Path) -> None:
    with pytest.raises(BuildError) as info:
        detect(tree(tmp_path, {"package.json": {"main": "a.js", "dependencies": {"x": "1"}}}))
    assert (
        "no lockfile (looked for package-lock.json, npm-shrinkwrap.json, pnpm-lock.yaml, yarn.lock)"
        in info.value.message
    )


def test_node_with_nothing_to_run(tmp_path: Path) -> None:
    with pytest.raises(BuildError) as info:
        detect(tree(tmp_path, {"package.json": {"name": "x"}}))
    assert info.value.message.endswith(
        "package.json: nothing to start or build (looked for scripts.start, main, server.js "
        "and scripts.build)"
    )


def test_broken_package_json(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match=r"package\.json: not readable JSON"):
        detect(tree(tmp_path, {"package.json": "{"}))


def test_procfile_web_line(tmp_path: Path) -> None:
    files = {"requirements.txt": "flask\n", "Procfile": "worker: x\nweb: python app.py\n"}
    d = detect(tree(tmp_path, files))
    assert (d.language, d.manager, d.lockfile, d.start) == (
        "python",
        "pip",
        "requirements.txt",
        "python app.py",
    )


def test_gunicorn_finds_the_wsgi_object(tmp_path: Path) -> None:
    files = {"requirements.txt": "Gunicorn>=21\n", "wsgi.py": "application = make()\n"}
    assert detect(tree(tmp_path, files)).start == "gunicorn --bind 0.0.0.0:$PORT wsgi:application"


def test_uvicorn_from_pyproject(tmp_path: Path) -> None:
    files = {
        "pyproject.toml": '[project]\nname = "x"\ndependencies = ["uvicorn[standard]==0.30"]\n',
        "main.py": "app: Starlette = Starlette()\n",
    }
    d = detect(tree(tmp_path, files))
    assert (d.lockfile, d.start) == (
        "pyproject.toml",
        "uvicorn --host 0.0.0.0 --port $PORT main:app",
    )


def test_an_async_function_named_app(tmp_path: Path) -> None:
    files = {"requirements.txt": "uvicorn\n", "asgi.py": "async def app(scope, r, s):\n  pass\n"}
    assert detect(tree(tmp_path, files)).start == "uvicorn --host 0.0.0.0 --port $PORT asgi:app"


def test_gunicorn_without_an_app_object(tmp_path: Path) -> None:
    with pytest.raises(BuildError) as info:
        detect(tree(tmp_path, {"requirements.txt": "gunicorn\n", "app.py": "print(1)\n"}))
    assert (
        "looked for `app` or `application`, assigned or defined, in wsgi.py, app.py, main.py"
        in info.value.message
    )


def test_python_with_no_way_to_start(tmp_path: Path) -> None:
    with pytest.raises(BuildError) as info:
        detect(tree(tmp_path, {"requirements.txt": "requests\n"}))
    assert (
        "looked for a Procfile `web:` line, and for gunicorn or uvicorn in requirements.txt"
        in info.value.message
    )


def test_nothing_recognised_names_what_was_looked_for(tmp_path: Path) -> None:
    with pytest.raises(BuildError) as info:
        detect(tree(tmp_path, {"Gemfile": ""}))
    assert "looked for package.json, requirements.txt, pyproject.toml" in info.value.message


def test_both_languages_need_a_runtime_to_choose(tmp_path: Path) -> None:
    files = {"package.json": {"main": "a.js"}, "requirements.txt": "", "Procfile": "web: x\n"}
    with pytest.raises(BuildError, match=r"both package\.json and a Python manifest"):
        detect(tree(tmp_path, files))
    assert detect(tmp_path, "python").start == "x"
    assert detect(tmp_path, "node").start == "node a.js"


def test_runtime_naming_a_language_the_folder_lacks(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match=r"runtime python, but there is no requirements\.txt"):
        detect(tree(tmp_path, {"package.json": {"main": "a.js"}}), "python")


@pytest.mark.parametrize(
    ("app", "language", "start", "static_dir"),
    [
        ("node-server", "node", "node server.js", None),
        ("vite-site", "node", None, "dist"),
        ("python-wsgi", "python", "gunicorn --bind 0.0.0.0:$PORT app:app", None),
        ("python-procfile", "python", "python app.py", None),
    ],
)
def test_the_example_apps(
    app: str, language: str, start: str | None, static_dir: str | None
) -> None:
    d = detect(EXAMPLES / app)
    assert (d.language, d.start, d.static_dir) == (language, start, static_dir)
