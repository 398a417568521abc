"""hosting.yaml: the validated, frozen spec, the plan catalog and stable names."""

from hosting.spec.loader import load, loads
from hosting.spec.models import (
    ApiDeployment,
    DatabaseDeployment,
    Limits,
    Plan,
    Platform,
    Spec,
    Tenant,
    WebDeployment,
)
from hosting.spec.plans import DEFAULT_PLANS

__all__ = [
    "DEFAULT_PLANS",
    "ApiDeployment",
    "DatabaseDeployment",
    "Limits",
    "Plan",
    "Platform",
    "Spec",
    "Tenant",
    "WebDeployment",
    "load",
    "loads",
]
