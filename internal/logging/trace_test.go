package logging

import (
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestTraceAttrs(t *testing.T) {
	t.Parallel()
	const trace = "4bf92f3577b34da6a3ce929d0e0e4736"
	cases := []struct {
		name    string
		project string
		headers map[string]string
		want    []any
	}{
		{"traceparent", "p", map[string]string{"traceparent": "00-" + trace + "-00f067aa0ba902b7-01"},
			[]any{TraceKey, "projects/p/traces/" + trace, SpanKey, "00f067aa0ba902b7"}},
		{"cloud trace context", "p", map[string]string{"X-Cloud-Trace-Context": "4BF92F3577B34DA6A3CE929D0E0E4736/255;o=1"},
			[]any{TraceKey, "projects/p/traces/" + trace, SpanKey, "00000000000000ff"}},
		{"cloud trace context without span", "p", map[string]string{"X-Cloud-Trace-Context": trace},
			[]any{TraceKey, "projects/p/traces/" + trace}},
		{"traceparent wins", "p", map[string]string{"traceparent": "00-" + trace + "-00f067aa0ba902b7-01",
			"X-Cloud-Trace-Context": "11111111111111111111111111111111/1"},
			[]any{TraceKey, "projects/p/traces/" + trace, SpanKey, "00f067aa0ba902b7"}},
		{"all-zero traceparent falls back", "p", map[string]string{"traceparent": "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
			"X-Cloud-Trace-Context": trace}, []any{TraceKey, "projects/p/traces/" + trace}},
		{"malformed", "p", map[string]string{"traceparent": "garbage", "X-Cloud-Trace-Context": "xyz/1"}, nil},
		{"no project", "", map[string]string{"traceparent": "00-" + trace + "-00f067aa0ba902b7-01"}, nil},
		{"no header", "p", nil, nil},
	}
	for _, tc := range cases {
		h := http.Header{}
		for k, v := range tc.headers {
			h.Set(k, v)
		}
		if diff := cmp.Diff(tc.want, TraceAttrs(tc.project, h)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, diff)
		}
	}
}
