from __future__ import annotations

from pathlib import Path

import pytest

import hosting
from hosting.spec.models import Spec
from hosting.stacks.settings import DatabaseAccess, ProgramSettings, database_keys

REPO = Path(__file__).resolve().parents[2]


def fixed_settings(spec: Spec, state_dir: Path = Path("/state")) -> ProgramSettings:
    """Settings a test controls: known passwords, ports in file order, fixed secret values."""
    databases = {
        key: DatabaseAccess(
            user="u_" + key.replace("/", "_").replace("-", "_"),
            password=f"pw-{key.replace('/', '-')}-Zq9",
            port=15432 + i,
        )
        for i, key in enumerate(database_keys(spec))
    }
    secrets = {
        f"{tid}/{did}/{name}": f"secret-value-{tid}-{did}-{name}"
        for tid, tenant in spec.tenants.items()
        for did, dep in tenant.deployments.items()
        if dep.type != "database"
        for name in dep.secrets
    }
    return ProgramSettings(
        databases=databases,
        secret_values=secrets,
        state_dir=state_dir,
        base_dir=REPO,
        verified_domains=frozenset(),
        volume_root=state_dir / "volumes",  # as apply sets it as root on a local engine
    )


@pytest.fixture(scope="session")
def example_spec() -> Spec:
    return hosting.load(REPO / "hosting.yaml")
