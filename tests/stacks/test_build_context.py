"""A build's context digest: any edit to a source file changes it, nothing else does."""

from __future__ import annotations

from pathlib import Path

from hosting.stacks.build_context import digest


def test_the_digest_follows_content_names_and_exec_bits_only(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM x\n")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "app.sh").write_text("echo 1\n")
    first = digest(tmp_path)
    assert digest(tmp_path) == first
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "HEAD").write_text("ref\n")
    assert digest(tmp_path) == first  # version-control files are not the build's input
    (tmp_path / "src" / "app.sh").write_text("echo 2\n")
    edited = digest(tmp_path)
    assert edited != first
    (tmp_path / "src" / "app.sh").chmod(0o755)
    assert digest(tmp_path) != edited
    (tmp_path / "src" / "app.sh").rename(tmp_path / "src" / "main.sh")
    assert digest(tmp_path) not in (first, edited)
