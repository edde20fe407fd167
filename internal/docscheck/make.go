package docscheck

import (
	"fmt"
	"regexp"
)

var (
	// targetRE is a rule's first line in a Makefile.
	targetRE = regexp.MustCompile(`(?m)^([A-Za-z0-9][A-Za-z0-9_.-]*)\s*:([^=]|$)`)
	// makeRE is a make command in code: at a command's start.
	makeRE = regexp.MustCompile(`(?:^|[\s;&|(])make\s+([a-z][a-z0-9_-]*)`)
)

// MakeTargets are the rules a Makefile defines.
func MakeTargets(makefile string) map[string]bool {
	out := map[string]bool{}
	for _, m := range targetRE.FindAllStringSubmatch(makefile, -1) {
		out[m[1]] = true
	}
	return out
}

// MakeProblems lists each `make X` in the documents' code (inline spans
// and fenced blocks; in prose "make" is a verb) whose X is no target.
func MakeProblems(targets map[string]bool, docs []Doc) []string {
	var out []string
	for _, d := range docs {
		for _, l := range append(append([]Line{}, d.Spans...), d.Code...) {
			for _, m := range makeRE.FindAllStringSubmatch(l.Text, -1) {
				if !targets[m[1]] {
					out = append(out, fmt.Sprintf("%s:%d: `make %s` is no target of the Makefile", d.Path, l.N, m[1]))
				}
			}
		}
	}
	return out
}
