package docscheck

import "github.com/pgbq/pgbq/internal/config"

// Variables are the variables either binary reads, each once.
func Variables() []config.Var {
	var out []config.Var
	seen := map[string]bool{}
	for _, v := range append(config.Variables(&config.Loader{}), config.Variables(&config.Planner{})...) {
		if !seen[v.Name] {
			seen[v.Name] = true
			out = append(out, v)
		}
	}
	return out
}

// readButUnused are variables of the shared configuration that one binary
// reads (and checks) but never acts on: the table says which one uses it.
var readButUnused = map[string]string{
	"PUBSUB_SUBSCRIPTION": "loader", // only `loader --pull` subscribes
}

// UsedBy is the "used by" cell of each variable's row in
// docs/configuration.md: loader, planner or both, from which binary's
// configuration holds it.
func UsedBy() map[string]string {
	in := func(vs []config.Var) map[string]bool {
		m := map[string]bool{}
		for _, v := range vs {
			m[v.Name] = true
		}
		return m
	}
	l, p := in(config.Variables(&config.Loader{})), in(config.Variables(&config.Planner{}))
	out := map[string]string{}
	for _, v := range Variables() {
		switch {
		case readButUnused[v.Name] != "":
			out[v.Name] = readButUnused[v.Name]
		case l[v.Name] && p[v.Name]:
			out[v.Name] = "both"
		case l[v.Name]:
			out[v.Name] = "loader"
		default:
			out[v.Name] = "planner"
		}
	}
	return out
}
