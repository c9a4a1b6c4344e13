package jinja

import "testing"

// render renders src with no values.
func render(t *testing.T, src string) (string, error) {
	t.Helper()
	tpl, err := NewEnv(nil).Parse("t", src)
	if err != nil {
		return "", err
	}
	out, _, err := tpl.Render(map[string]any{}, false)
	return out, err
}

func TestRenderSmoke(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{`{{ {"a":"x"} | tojson }}`, `{"a": "x"}`},
		{`{{ {"a":"x"} | tojson | tojson }}`, `"{\"a\": \"x\"}"`},
	} {
		got, err := render(t, tc.src)
		if err != nil || got != tc.want {
			t.Errorf("%s: got %q, %v; want %q", tc.src, got, err, tc.want)
		}
	}
}
