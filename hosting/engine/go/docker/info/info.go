// Package info maps the Terraform docker provider onto the Pulumi package `docker`, with the
// resource tokens and property names the published pulumi_docker SDKs were generated against.
package info

import (
	"unicode"

	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfbridge"
	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfbridge/tokens"
	shimv2 "github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfshim/sdk-v2"
	pulumitokens "github.com/pulumi/pulumi/sdk/v3/go/common/tokens"
	"github.com/terraform-providers/terraform-provider-docker/shim"
)

const pkg = "docker"

func resource(name string) *tfbridge.ResourceInfo {
	file := string(unicode.ToLower(rune(name[0]))) + name[1:]
	return &tfbridge.ResourceInfo{Tok: pulumitokens.Type(pkg + ":index/" + file + ":" + name)}
}

// Provider is the bridge's description of the provider at the given plugin version.
func Provider(version string) tfbridge.ProviderInfo {
	container := resource("Container")
	// A container cannot be renamed in place, so a replacement must free the name first.
	container.DeleteBeforeReplace = true
	container.Fields = map[string]*tfbridge.SchemaInfo{
		"command":           {Name: "command"},
		"networks_advanced": {Name: "networksAdvanced"},
	}
	remoteImage := resource("RemoteImage")
	remoteImage.Fields = map[string]*tfbridge.SchemaInfo{"name": {Name: "name"}}

	prov := tfbridge.ProviderInfo{
		P:           shimv2.NewProvider(shim.NewProvider(version)),
		Name:        pkg,
		Version:     version,
		Description: "Docker containers, networks, volumes and images",
		License:     "Apache-2.0",
		GitHubOrg:   "kreuzwerker",
		Config: map[string]*tfbridge.SchemaInfo{
			"host": {Default: &tfbridge.DefaultInfo{
				EnvVars: []string{"DOCKER_HOST"},
				Value:   "unix:///var/run/docker.sock",
			}},
			"registry_auth": {Name: "registryAuth", MaxItemsOne: tfbridge.False()},
		},
		Resources: map[string]*tfbridge.ResourceInfo{
			"docker_container":      container,
			"docker_image":          remoteImage,
			"docker_config":         resource("ServiceConfig"),
			"docker_network":        resource("Network"),
			"docker_secret":         resource("Secret"),
			"docker_service":        resource("Service"),
			"docker_volume":         resource("Volume"),
			"docker_registry_image": resource("RegistryImage"),
			"docker_plugin":         resource("Plugin"),
			"docker_tag":            resource("Tag"),
		},
		DataSources: map[string]*tfbridge.DataSourceInfo{
			"docker_image": {Tok: pulumitokens.ModuleMember(pkg + ":index/getRemoteImage:getRemoteImage")},
		},
		MetadataInfo: tfbridge.NewProviderMetadata(nil),
	}
	// Everything not named above gets the standard docker:index/… token.
	prov.MustComputeTokens(tokens.SingleModule("docker_", "index", tokens.MakeStandard(pkg)))
	return prov
}
