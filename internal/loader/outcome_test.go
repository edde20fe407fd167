package loader

import "testing"

// String names every outcome and never panics, whatever the value.
func TestOutcomeString(t *testing.T) {
	t.Parallel()
	for o, want := range map[Outcome]string{Finished: "finished", Published: "published", Continue: "continue",
		Busy: "busy", AlreadyFinished: "already_finished", 0: "outcome(0)", -1: "outcome(-1)", 99: "outcome(99)"} {
		if got := o.String(); got != want {
			t.Errorf("Outcome(%d).String() = %q, want %q", int(o), got, want)
		}
	}
}
