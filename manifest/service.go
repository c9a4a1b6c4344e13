package manifest

import (
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

var serviceKeys = []string{"image", "stage", "command", "env", "user", "workdir", "ready", "timeout", "share"}

// serviceName is what a service may be called: it is a host name in the
// pod's /etc/hosts.
var serviceName = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?$`)

// services decodes a stage's services: a map of name to an image
// reference, or to a map with image: or stage: and the service's
// settings.
func (d *decoder) services(n *yaml.Node) ([]*Service, error) {
	ps, err := d.mapping(n, "services")
	if err != nil {
		return nil, err
	}
	var out []*Service
	for _, p := range ps {
		if !serviceName.MatchString(p.key) {
			return nil, Errorf(d.pos(p.k), "service name %q: use letters, digits and '-' (it is the service's host name in the pod)", p.key)
		}
		sv := &Service{Name: p.key, Pos: d.pos(p.k)}
		if p.v.Kind == yaml.ScalarNode {
			if sv.Image, err = d.nonEmpty(p.v, "service "+p.key); err != nil {
				return nil, err
			}
			out = append(out, sv)
			continue
		}
		if err := d.service(sv, p.v); err != nil {
			return nil, err
		}
		out = append(out, sv)
	}
	return out, nil
}

func (d *decoder) service(sv *Service, n *yaml.Node) error {
	what := "service " + sv.Name
	ps, err := d.mapping(n, what, serviceKeys...)
	if err != nil {
		return err
	}
	for _, p := range ps {
		switch p.key {
		case "image":
			sv.Image, err = d.nonEmpty(p.v, what+" image")
		case "stage":
			sv.Stage, err = d.nonEmpty(p.v, what+" stage")
		case "command":
			var c Command
			c, err = d.command(p.v, what+" command")
			sv.Command = &c
		case "env":
			sv.Env, err = d.kvs(p.v, what+" env")
		case "user":
			sv.User, err = d.nonEmpty(p.v, what+" user")
		case "workdir":
			sv.Workdir, err = d.nonEmpty(p.v, what+" workdir")
		case "ready":
			sv.Ready, err = d.ready(p.v, what)
		case "timeout":
			sv.Timeout, err = d.duration(p.v)
		case "share":
			if p.v.Kind != yaml.ScalarNode || p.v.Tag != "!!bool" {
				return d.typeError(p.v, what+" share", "true or false")
			}
			sv.Share = p.v.Value == "true"
		}
		if err != nil {
			return err
		}
	}
	switch {
	case sv.Image == "" && sv.Stage == "":
		return Errorf(sv.Pos, "%s needs image: (an image reference) or stage: (a stage of this manifest)", what)
	case sv.Image != "" && sv.Stage != "":
		return Errorf(sv.Pos, "%s has both image: and stage:: give one", what)
	}
	return nil
}

// ready decodes {port: N} or {run: COMMAND}.
func (d *decoder) ready(n *yaml.Node, what string) (Ready, error) {
	var r Ready
	ps, err := d.mapping(n, what+" ready", "port", "run")
	if err != nil {
		return r, err
	}
	if len(ps) != 1 {
		return r, Errorf(d.pos(n), "%s ready needs one of port: (a TCP port listening) or run: (a command exiting 0)", what)
	}
	p := ps[0]
	switch p.key {
	case "port":
		v, err := d.str(p.v, what+" ready port")
		if err != nil {
			return r, err
		}
		port, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || port < 1 || port > 65535 {
			return r, Errorf(d.pos(p.v), "%s ready port %q: want a TCP port, 1 to 65535", what, v)
		}
		r.Port = port
	case "run":
		c, err := d.command(p.v, what+" ready run")
		if err != nil {
			return r, err
		}
		r.Run = &c
	}
	return r, nil
}

// serviceNames decodes a test's (or run step's) services: [a, b].
func (d *decoder) serviceNames(n *yaml.Node) ([]string, []Pos, error) {
	items, err := d.seq(n, "services")
	if err != nil {
		return nil, nil, err
	}
	var names []string
	var pos []Pos
	for _, it := range items {
		s, err := d.nonEmpty(it, "an item of services")
		if err != nil {
			return nil, nil, err
		}
		if contains(names, s) {
			return nil, nil, Errorf(d.pos(it), "service %q is named twice", s)
		}
		names = append(names, s)
		pos = append(pos, d.pos(it))
	}
	return names, pos, nil
}

// checkServices checks what a stage's tests and run steps say of its
// services: each names a service of the stage; a user's services are all
// shared or all its own (it runs in one pod: the stage's shared pod, or
// its own); and no two services of one pod are ready on the same port.
func checkServices(s *Stage) error {
	var shared []*Service
	for _, sv := range s.Services {
		if sv.Share {
			shared = append(shared, sv)
		}
	}
	if err := samePort(shared, "the stage's shared services"); err != nil {
		return err
	}
	for _, t := range s.Tests {
		if err := checkUser(s, "test "+strconv.Quote(t.Name), t.Services, t.ServicesPos); err != nil {
			return err
		}
	}
	for _, st := range s.Steps {
		if err := checkUser(s, "step "+strconv.Quote(st.Name), st.Services, st.ServicesPos); err != nil {
			return err
		}
	}
	return nil
}

// checkUser checks the services a test or run step (what) names.
func checkUser(s *Stage, what string, names []string, pos []Pos) error {
	var pod []*Service
	for i, name := range names {
		sv := s.ServiceByName(name)
		if sv == nil {
			var all []string
			for _, sv := range s.Services {
				all = append(all, sv.Name)
			}
			known := "the stage has no services:"
			if len(all) > 0 {
				known = "the stage's services are " + strings.Join(all, ", ")
			}
			return Errorf(pos[i], "%s: unknown service %q: %s", what, name, known)
		}
		if len(pod) > 0 && pod[0].Share != sv.Share {
			a, b := pod[0], sv
			if b.Share {
				a, b = b, a
			}
			return Errorf(pos[i], "%s uses the shared service %q and its own service %q: it runs in one pod, the stage's shared one or its own, so make both shared or neither", what, a.Name, b.Name)
		}
		pod = append(pod, sv)
	}
	return samePort(pod, what)
}

// samePort returns an error naming two services of one pod ready on the
// same port.
func samePort(pod []*Service, what string) error {
	seen := map[int]*Service{}
	for _, sv := range pod {
		if sv.Ready.Port == 0 {
			continue
		}
		if o := seen[sv.Ready.Port]; o != nil {
			return Errorf(sv.Pos, "services %q (%s) and %q of %s both listen on port %d: they share one network namespace", o.Name, o.Pos, sv.Name, what, sv.Ready.Port)
		}
		seen[sv.Ready.Port] = sv
	}
	return nil
}
