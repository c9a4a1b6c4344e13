// Package platform owns the OS/architecture/variant triple an image is
// built for ("linux/arm64", "linux/arm/v7"): parsing it as docker buildx
// and BuildKit take it (normalised as containerd does: aarch64 is arm64,
// arm64's v8 is no variant), the host's, and its OCI form.
package platform
