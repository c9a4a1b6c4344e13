package dag

import (
	"fmt"
	"github.com/kiln-build/kiln/manifest"
)

// addServices adds the service nodes of stage s: one per shared service
// some test or run step uses, and one per test or run step for each
// service of its own.
func addServices(s *manifest.Stage, add func(*Node) *Node) {
	shared := map[string]bool{}
	// own adds the services of one user (user names it, key keys them).
	own := func(names []string, user string, key func(name string) string, st *manifest.Step, t *manifest.Test) {
		for _, name := range names {
			switch sv := s.ServiceByName(name); {
			case sv == nil: // validate rejects it
			case sv.Share:
				shared[name] = true
			default:
				add(&Node{Key: key(name), Name: "service: " + name + " (" + user + ")", Kind: KindService, Stage: s, Step: st, Test: t, Service: sv, Index: -1})
			}
		}
	}
	for i, st := range s.Steps {
		own(st.Services, st.Name, func(name string) string { return StepServiceKey(s.Name, i, name) }, st, nil)
	}
	for _, t := range s.Tests {
		own(t.Services, t.Name, func(name string) string { return s.Name + "/test/" + t.Name + "/service/" + name }, nil, t)
	}
	for _, sv := range s.Services {
		if shared[sv.Name] {
			add(&Node{Key: s.Name + "/service/" + sv.Name, Name: "service: " + sv.Name, Kind: KindService, Stage: s, Service: sv, Index: -1})
		}
	}
}

// StepServiceKey is the key of the service node called name that step
// index of stage runs beside, when the service is not shared.
func StepServiceKey(stage string, index int, name string) string {
	return fmt.Sprintf("%s/%d/service/%s", stage, index, name)
}

// validateServices checks that the services a stage's tests name exist
// and that a service's stage does.
func validateServices(s *manifest.Stage, stages map[string]*manifest.Stage, unknown func(manifest.Pos, string, string) error) error {
	for _, sv := range s.Services {
		if sv == nil {
			return manifest.Errorf(s.Pos, "stage %q: a service is missing", s.Name)
		}
		if sv.Stage != "" && stages[sv.Stage] == nil {
			return unknown(sv.Pos, "stage of service "+sv.Name+",", sv.Stage)
		}
	}
	// unknownService is the error of a user (what) naming no service of
	// the stage, or nil.
	unknownService := func(what string, at manifest.Pos, names []string, pos []manifest.Pos) error {
		for i, name := range names {
			if s.ServiceByName(name) == nil {
				if i < len(pos) {
					at = pos[i]
				}
				return manifest.Errorf(at, "%s: unknown service %q", what, name)
			}
		}
		return nil
	}
	for _, st := range s.Steps {
		if err := unknownService(fmt.Sprintf("step %q", st.Name), st.Pos, st.Services, st.ServicesPos); err != nil {
			return err
		}
	}
	for _, t := range s.Tests {
		if t == nil {
			continue
		}
		if err := unknownService(fmt.Sprintf("test %q", t.Name), t.Pos, t.Services, t.ServicesPos); err != nil {
			return err
		}
	}
	return nil
}
