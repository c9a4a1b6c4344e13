package manifest

import (
	"fmt"
	"strconv"
	"strings"
)

// SetEnv returns env with KEY=VALUE set: an earlier KEY is replaced in
// place (as BuildKit does), else it is added. env itself is not changed.
func SetEnv(env []string, kv string) []string {
	k, _, _ := strings.Cut(kv, "=")
	out := append([]string(nil), env...)
	for i, e := range out {
		if strings.HasPrefix(e, k+"=") {
			out[i] = kv
			return out
		}
	}
	return append(out, kv)
}

// exposedPorts reads one word of EXPOSE: PORT, PORT/PROTO or a range
// FIRST-LAST[/PROTO], into PORT/PROTO values (tcp by default).
func exposedPorts(w string) ([]string, error) {
	spec, proto, ok := strings.Cut(w, "/")
	if !ok || proto == "" {
		proto = "tcp"
	}
	proto = strings.ToLower(proto)
	switch proto {
	case "tcp", "udp", "sctp":
	default:
		return nil, fmt.Errorf("port %q: unknown protocol %q (use tcp, udp or sctp)", w, proto)
	}
	if i := strings.LastIndex(spec, ":"); i >= 0 {
		spec = spec[i+1:] // IP:HOSTPORT:PORT forms keep the container port
	}
	first, last, isRange := strings.Cut(spec, "-")
	lo, err1 := strconv.ParseUint(first, 10, 16)
	hi := lo
	var err2 error
	if isRange {
		hi, err2 = strconv.ParseUint(last, 10, 16)
	}
	if err1 != nil || err2 != nil || hi < lo {
		return nil, fmt.Errorf("port %q: want PORT[/PROTO] or FIRST-LAST[/PROTO]", w)
	}
	var out []string
	for p := lo; p <= hi; p++ {
		out = append(out, fmt.Sprintf("%d/%s", p, proto))
	}
	return out, nil
}
