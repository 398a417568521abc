// Command pulumi-resource-docker is the docker resource plugin the Pulumi engine starts.
package main

import (
	_ "embed"

	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfbridge"

	"hosting.local/engine/docker/info"
)

// version is set at link time to the pulumi_docker SDK version it serves.
var version = "0.0.0"

// schema.json is written by pulumi-tfgen-docker before this is built.
//
//go:embed schema.json
var schema []byte

func main() {
	tfbridge.Main("docker", version, info.Provider(version), schema)
}
