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
	for i, st := range s.Steps {
		for _, name := range st.Services {
			sv := s.ServiceByName(name)
			if sv == nil {
				continue // validate rejects it
			}
			if sv.Share {
				shared[name] = true
				continue
			}
			add(&Node{Key: StepServiceKey(s.Name, i, name), Name: "service: " + name + " (" + st.Name + ")",
				Kind: KindService, Stage: s, Step: st, Service: sv, Index: -1})
		}
	}
	for _, t := range s.Tests {
		for _, name := range t.Services {
			sv := s.ServiceByName(name)
			if sv == nil {
				continue // validate rejects it
			}
			if sv.Share {
				shared[name] = true
				continue
			}
			add(&Node{Key: s.Name + "/test/" + t.Name + "/service/" + name, Name: "service: " + name + " (" + t.Name + ")",
				Kind: KindService, Stage: s, Test: t, Service: sv, Index: -1})
		}
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
	for _, st := range s.Steps {
		for i, name := range st.Services {
			if s.ServiceByName(name) == nil {
				pos := st.Pos
				if i < len(st.ServicesPos) {
					pos = st.ServicesPos[i]
				}
				return manifest.Errorf(pos, "step %q: unknown service %q", st.Name, name)
			}
		}
	}
	for _, t := range s.Tests {
		if t == nil {
			continue
		}
		for i, name := range t.Services {
			if s.ServiceByName(name) == nil {
				pos := t.Pos
				if i < len(t.ServicesPos) {
					pos = t.ServicesPos[i]
				}
				return manifest.Errorf(pos, "test %q: unknown service %q", t.Name, name)
			}
		}
	}
	return nil
}
