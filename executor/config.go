package executor

import (
	"encoding/json"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/image"
	"github.com/kiln-build/kiln/manifest"
)

// applyConfig applies a config step's change to c (see
// manifest.ImageConfig for what each field does), and returns the change
// as the step's cache key arguments.
func applyConfig(c *image.Config, d *manifest.ImageConfig) ([]string, error) {
	if d == nil {
		return nil, nil
	}
	js, err := json.Marshal(d)
	if err != nil {
		return nil, err
	}
	if d.Cmd != nil {
		c.Cmd = append([]string{}, d.Cmd...)
	}
	if d.Entrypoint != nil {
		c.Entrypoint = append([]string{}, d.Entrypoint...)
	}
	if d.Shell != nil {
		c.Shell = append([]string{}, d.Shell...)
	}
	for _, kv := range d.Env {
		c.Env = manifest.SetEnv(c.Env, kv.Key+"="+kv.Value)
	}
	if d.Workdir != "" {
		c.WorkingDir = d.Workdir
	}
	if d.User != "" {
		c.User = d.User
	}
	if len(d.Expose) > 0 {
		ports := map[string]struct{}{}
		for k := range c.ExposedPorts {
			ports[k] = struct{}{}
		}
		for _, p := range d.Expose {
			if !strings.Contains(p, "/") {
				p += "/tcp"
			}
			ports[p] = struct{}{}
		}
		c.ExposedPorts = ports
	}
	if len(d.Labels) > 0 {
		labels := map[string]string{}
		for k, v := range c.Labels {
			labels[k] = v
		}
		for _, kv := range d.Labels {
			labels[kv.Key] = kv.Value
		}
		c.Labels = labels
	}
	if len(d.Volumes) > 0 {
		vols := map[string]struct{}{}
		for k := range c.Volumes {
			vols[k] = struct{}{}
		}
		for _, v := range d.Volumes {
			vols[v] = struct{}{}
		}
		c.Volumes = vols
	}
	if d.StopSignal != "" {
		c.StopSignal = d.StopSignal
	}
	if h := d.Healthcheck; h != nil {
		c.Healthcheck = &v1.HealthConfig{Test: append([]string{}, h.Test...), Interval: h.Interval,
			Timeout: h.Timeout, StartPeriod: h.StartPeriod, Retries: h.Retries}
		c.StartInterval = h.StartInterval
	}
	if d.Author != "" {
		c.Author = d.Author
	}
	switch {
	case d.OnBuild == nil:
	case len(d.OnBuild) == 0:
		c.OnBuild = nil
	default:
		c.OnBuild = append(append([]string{}, c.OnBuild...), d.OnBuild...)
	}
	return []string{string(js)}, nil
}
