"""What every command shares: the file, the state directory, the loaded spec."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the spec's models cost pydantic's import, which `hosting --help` skips
    from hosting.spec import Spec


@dataclass
class App:
    file: str
    state_dir_option: str | None = None
    backend: str | None = None
    debug: bool = False
    _spec: Spec | None = field(default=None, repr=False)

    @property
    def file_path(self) -> Path:
        return Path(self.file)

    @property
    def spec(self) -> Spec:
        if self._spec is None:
            from hosting.spec import load

            self._spec = load(self.file_path)
        return self._spec

    @property
    def state_dir(self) -> Path:
        """Pulumi state, the DuckDB store and logs; `.hosting/` beside the file by default."""
        if self.state_dir_option:
            path = Path(self.state_dir_option)
        else:
            path = self.file_path.resolve().parent / ".hosting"
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def store_path(self) -> Path:
        return self.state_dir / "hosting.duckdb"

    @staticmethod
    def debug_log_path(app: App | None) -> Path:
        if app is not None:
            try:
                return app.state_dir / "logs" / "debug.log"
            except OSError:
                pass
        import tempfile

        return Path(os.environ.get("TMPDIR", tempfile.gettempdir())) / "hosting-debug.log"
