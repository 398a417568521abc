"""hosting: a declarative hosting platform driven by one hosting.yaml."""

from hosting.errors import HostingError, SpecError
from hosting.spec import Spec, load

__version__ = "0.1.0"

__all__ = ["HostingError", "Spec", "SpecError", "__version__", "load"]
