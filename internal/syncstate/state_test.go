package syncstate

import "testing"

func TestStateString(t *testing.T) {
	t.Parallel()
	for s, want := range map[State]string{StateFinished: "finished", StateQuarantined: "quarantined", StatePaused: "paused",
		"": "none", "something_new": "something_new"} {
		if got := s.String(); got != want {
			t.Errorf("State(%q).String() = %q, want %q", string(s), got, want)
		}
	}
}
