// Package shim exposes the upstream Terraform provider's SDKv2 half to the Pulumi bridge.
package shim

import (
	"github.com/hashicorp/terraform-plugin-sdk/v2/helper/schema"
	"github.com/terraform-providers/terraform-provider-docker/internal/provider"
)

// NewProvider is the upstream's containers, networks, volumes, images and services provider.
func NewProvider(version string) *schema.Provider {
	return provider.New(version)()
}
