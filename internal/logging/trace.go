package logging

import (
	"net/http"
	"regexp"
	"strconv"
	"strings"
)

// Cloud Logging's fields that tie a log entry to a request's trace.
const (
	TraceKey = "logging.googleapis.com/trace"
	SpanKey  = "logging.googleapis.com/spanId"
)

var (
	traceparentRE = regexp.MustCompile(`^[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$`)
	cloudTraceRE  = regexp.MustCompile(`^([0-9a-fA-F]{32})(?:/([0-9]+))?`)
)

// TraceAttrs returns the attributes (key, value pairs for slog's With)
// that correlate log lines with the request's trace in project: the W3C
// traceparent header, else X-Cloud-Trace-Context; none when neither holds
// a trace or project is empty.
func TraceAttrs(project string, h http.Header) []any {
	if project == "" {
		return nil
	}
	var trace, span string
	if m := traceparentRE.FindStringSubmatch(strings.TrimSpace(h.Get("traceparent"))); m != nil && strings.Trim(m[1], "0") != "" {
		trace, span = m[1], m[2]
	} else if m := cloudTraceRE.FindStringSubmatch(strings.TrimSpace(h.Get("X-Cloud-Trace-Context"))); m != nil {
		trace = strings.ToLower(m[1])
		if n, err := strconv.ParseUint(m[2], 10, 64); err == nil && n != 0 {
			span = strconv.FormatUint(n, 16)
			span = strings.Repeat("0", 16-len(span)) + span
		}
	}
	if trace == "" {
		return nil
	}
	out := []any{TraceKey, "projects/" + project + "/traces/" + trace}
	if span != "" {
		out = append(out, SpanKey, span)
	}
	return out
}
