"""Every engine version in one place. The Python SDKs in pyproject.toml are pinned to match:
`pulumi_docker` X.Y.Z asks the engine for the docker plugin X.Y.Z, so the plugin we build
reports exactly that version. The CLI is the newest release the Go module proxy serves; the
Automation API accepts a CLI newer than its SDK."""

from __future__ import annotations

CLI_VERSION = "3.274.1"
"""github.com/pulumi/pulumi/pkg/v3, built from go/cli (its go.mod requires the same)."""

PYTHON_SDK_VERSION = "3.272.0"
"""pulumi on PyPI (3.274 is not published there)."""

DOCKER_PLUGIN_VERSION = "5.1.0"
"""pulumi_docker on PyPI, and the version our go/docker plugin announces."""

GO_PACKAGE_CLI = "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"
GO_VERSION_SYMBOL = "github.com/pulumi/pulumi/sdk/v3/go/common/version.Version"
