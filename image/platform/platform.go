package platform

import (
	"fmt"
	"runtime"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Platform is an image's platform. The zero Platform is none given.
type Platform struct {
	OS, Arch, Variant string
}

// Host is this machine's platform.
func Host() Platform {
	return normalize(Platform{OS: "linux", Arch: runtime.GOARCH})
}

// String returns "os/arch" or "os/arch/variant".
func (p Platform) String() string {
	if p.Variant != "" {
		return p.OS + "/" + p.Arch + "/" + p.Variant
	}
	return p.OS + "/" + p.Arch
}

// IsZero reports whether no platform is given.
func (p Platform) IsZero() bool { return p == Platform{} }

// OCI returns p as go-containerregistry's v1.Platform.
func (p Platform) OCI() v1.Platform {
	return v1.Platform{OS: p.OS, Architecture: p.Arch, Variant: p.Variant}
}

// FromOCI returns the platform of an index entry or an image config.
func FromOCI(os, arch, variant string) Platform {
	return normalize(Platform{OS: os, Arch: arch, Variant: variant})
}

// Matches reports whether an image of platform q serves p: the same OS
// and architecture, and the same variant when p names one.
func (p Platform) Matches(q Platform) bool {
	p, q = normalize(p), normalize(q)
	return p.OS == q.OS && p.Arch == q.Arch && (p.Variant == "" || q.Variant == "" || p.Variant == q.Variant)
}

// Parse reads "os/arch[/variant]" ("linux/arm64", "linux/arm/v7"); an
// architecture alone means linux. Only linux is accepted: images are
// Linux images.
func Parse(s string) (Platform, error) {
	parts := strings.Split(strings.ToLower(strings.TrimSpace(s)), "/")
	var p Platform
	switch len(parts) {
	case 1:
		p = Platform{OS: "linux", Arch: parts[0]}
	case 2:
		p = Platform{OS: parts[0], Arch: parts[1]}
	case 3:
		p = Platform{OS: parts[0], Arch: parts[1], Variant: parts[2]}
	default:
		return Platform{}, fmt.Errorf("platform %q: want os/arch or os/arch/variant, e.g. linux/arm64", s)
	}
	if p.OS == "" || p.Arch == "" {
		return Platform{}, fmt.Errorf("platform %q: want os/arch or os/arch/variant, e.g. linux/arm64", s)
	}
	if p.OS != "linux" {
		return Platform{}, fmt.Errorf("platform %q: kiln builds Linux images only", s)
	}
	return normalize(p), nil
}

// ParseList reads a comma-separated list of platforms, each once, in the
// order given (docker buildx's --platform linux/amd64,linux/arm64).
func ParseList(s string) ([]Platform, error) {
	var out []Platform
	for _, f := range strings.Split(s, ",") {
		if strings.TrimSpace(f) == "" {
			continue
		}
		p, err := Parse(f)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no platform in %q", s)
	}
	return out, nil
}

// normalize is containerd's: aarch64 → arm64 (whose v8 is no variant),
// x86_64 → amd64, armhf → arm/v7, arm without a variant → arm/v7.
func normalize(p Platform) Platform {
	switch p.Arch {
	case "aarch64", "arm64":
		p.Arch = "arm64"
		if p.Variant == "8" || p.Variant == "v8" {
			p.Variant = ""
		}
	case "x86_64", "x86-64", "amd64":
		p.Arch = "amd64"
		if p.Variant == "v1" {
			p.Variant = ""
		}
	case "i386", "i686", "386":
		p.Arch = "386"
	case "armhf", "armel", "arm":
		switch {
		case p.Arch == "armel":
			p.Variant = "v6"
		case p.Variant == "" || p.Arch == "armhf":
			p.Variant = "v7"
		case !strings.HasPrefix(p.Variant, "v"):
			p.Variant = "v" + p.Variant
		}
		p.Arch = "arm"
	}
	return p
}
