"""What a build's result depends on: every file of its context, by path and content.

The engine rebuilds an image only when one of its arguments changes, and a context is given
by its path, which stays the same while the files in it change. This digest goes in as a
trigger, so an edited source file rebuilds the image and replaces its containers.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

SKIPPED = frozenset({".git", "node_modules", "__pycache__", ".venv", ".hosting"})


def digest(context: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(context.rglob("*")):
        relative = path.relative_to(context)
        if SKIPPED & set(relative.parts) or not path.is_file():
            continue
        h.update(str(relative).encode() + b"\0")
        h.update(f"{path.stat().st_mode & 0o111:o}".encode() + b"\0")  # an exec bit counts
        h.update(path.read_bytes() + b"\0")
    return h.hexdigest()


def content_tag(
    platform: str,
    tenant: str,
    deployment: str,
    context: Path,
    dockerfile: str,
    args: dict[str, str],
) -> str:
    """A `build:` image's name on a swarm: its content in the tag, so a changed context is a
    new image the service rolls to (a node keeps running whatever `:latest` it loaded)."""
    h = hashlib.sha256(f"{digest(context)}\0{dockerfile}\0".encode())
    for key in sorted(args):
        h.update(f"{key}={args[key]}\0".encode())
    return f"hosting-build/{platform}_{tenant}_{deployment}:{h.hexdigest()[:16]}"
