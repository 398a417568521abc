// Command pulumi-tfgen-docker writes the provider's Pulumi schema (`schema --out DIR`).
package main

import (
	"os"

	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfgen"

	"hosting.local/engine/docker/info"
)

func main() {
	tfgen.Main("docker", os.Getenv("VERSION"), info.Provider(os.Getenv("VERSION")))
}
