package image

import (
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

// TestConfigExtras: the author and the healthcheck's start interval, which
// v1.Config has no field for, reach the image's config file, and read back.
func TestConfigExtras(t *testing.T) {
	cfg := Config{
		Config: v1.Config{Healthcheck: &v1.HealthConfig{Test: []string{"CMD", "true"}, Interval: time.Minute}},
		Author: "Jane", StartInterval: 2 * time.Second,
	}
	img, err := Assemble(nil, nil, cfg, time.Unix(1700000000, 0).UTC())
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(img, validate.Fast); err != nil {
		t.Errorf("validate: %v", err)
	}
	got, err := ConfigOf(img)
	if err != nil {
		t.Fatal(err)
	}
	if got.Author != "Jane" || got.StartInterval != 2*time.Second || got.Healthcheck == nil || got.Healthcheck.Interval != time.Minute {
		t.Errorf("ConfigOf = author %q start interval %v healthcheck %+v, want Jane, 2s and the interval kept", got.Author, got.StartInterval, got.Healthcheck)
	}
}
