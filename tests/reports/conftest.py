from __future__ import annotations

from pathlib import Path

import pytest

from tests.reports import realistic


@pytest.fixture(scope="module")
def realistic_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with hosting.yaml and .hosting/hosting.duckdb filled with realistic usage."""
    folder = tmp_path_factory.mktemp("reports")
    realistic.write_spec(folder)
    realistic.build_store(folder / ".hosting" / "hosting.duckdb")
    return folder
