"""The one exception tree. `hosting.cli` maps it to exit codes in one place.

Every error carries a message a user can act on and, where it helps, a hint. None of them
may carry a secret value: messages are built from names and paths, never from values of
env vars marked secret, passwords or passphrases.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


class HostingError(Exception):
    """An expected failure: printed as one line (plus hint) and exit code 1."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def lines(self) -> list[str]:
        line = f"error: {self.message}"
        if self.hint:
            line += f" (hint: {self.hint})"
        return [line]


@dataclass(frozen=True, order=True)
class SpecProblem:
    """One problem in hosting.yaml, located by file, line, column and YAML path."""

    file: str
    line: int
    column: int
    path: str
    message: str

    def render(self) -> str:
        where = f"{self.path}: " if self.path else ""
        return f"{self.file}:{self.line}:{self.column}: error: {where}{self.message}"

    def as_dict(self) -> dict[str, object]:
        """SPEC section 6's error object. Messages carry their hint after the first "; "
        ("unknown key `replica`; did you mean `replicas`?"): JSON gives the two apart."""
        message, _, hint = self.message.partition("; ")
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "path": self.path,
            "message": message,
            "hint": hint or None,
        }


class SpecError(HostingError):
    """hosting.yaml is invalid. `.errors` holds every problem found, sorted by position."""

    def __init__(self, errors: list[SpecProblem]) -> None:
        self.errors = sorted(errors)
        first = self.errors[0].render() if self.errors else "invalid hosting.yaml"
        more = f" (and {len(self.errors) - 1} more)" if len(self.errors) > 1 else ""
        super().__init__(first + more)

    def lines(self) -> list[str]:
        return [p.render() for p in self.errors]

    @classmethod
    def single(cls, file: Path | str, line: int, column: int, path: str, message: str) -> SpecError:
        return cls([SpecProblem(str(file), line, column, path, message)])


class UsageError(HostingError):
    """A command was called with arguments that cannot work (unknown tenant, bad date, …)."""


class NotFoundError(UsageError):
    """A named thing (tenant, deployment, invoice) does not exist."""


class LimitError(HostingError):
    """A tenant is over a plan limit; apply refuses before touching anything."""


class ProviderError(HostingError):
    """The deployment engine (Pulumi, Docker) failed or is missing."""


class EngineMissingError(ProviderError):
    """The Pulumi CLI or the docker plugin is not installed and cannot be installed here."""


class ConcurrentUpdateError(ProviderError):
    """Another apply/destroy holds the stack lock."""


class StalePlanError(ProviderError):
    """A saved plan no longer matches the file, the stack or the secrets: apply refuses."""


class BuildError(ProviderError):
    """A source build failed, or its source cannot be built: the message says what was looked
    for; `log_tail` holds the build log's last lines and `log_path` where the whole log is."""

    def __init__(
        self,
        message: str,
        hint: str | None = None,
        *,
        log_tail: tuple[str, ...] = (),
        log_path: Path | None = None,
    ) -> None:
        super().__init__(message, hint)
        self.log_tail = log_tail
        self.log_path = log_path

    def lines(self) -> list[str]:
        out = super().lines()
        out += [f"  | {line}" for line in self.log_tail]
        if self.log_path is not None:
            out.append(f"  the whole build log: {self.log_path}")
        return out


class StoreError(HostingError):
    """The DuckDB store could not be opened, migrated or written."""


class BillingError(HostingError):
    """An invoice operation is not allowed (bad status transition, period not ended, …)."""


class MeteringError(HostingError):
    """A collector or an import failed in a way the user must act on."""


class SecretError(HostingError):
    """A secret could not be resolved (missing env var or file, missing passphrase)."""


class AuditError(HostingError):
    """The audit log cannot be written or continued: state-changing commands are refused."""
