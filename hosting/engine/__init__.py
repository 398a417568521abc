"""The Pulumi engine that plan and apply drive: the CLI and the docker resource plugin.

`pins` names the versions, `locate` finds an installed engine, `build` makes one from Go
modules (the wrapper sources under `go/`), `install` downloads one where that is possible.
"""
