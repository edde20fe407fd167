package schema

import "testing"

// KeyHash gives what PostgreSQL's ('x' || substr(md5(t), 1, 8))::bit(32)::bigint
// and BigQuery's SAFE_CAST(CONCAT('0x', SUBSTR(TO_HEX(MD5(t)), 1, 8)) AS INT64)
// gave for these texts (read from both by hand; the loader tests compare
// all three on random keys of every kind).
func TestKeyHash(t *testing.T) {
	for text, want := range map[string]int64{"abc": 2416005272, "é": 1725812119, "": 3558706393} {
		if got := KeyHash(text); got != want {
			t.Errorf("KeyHash(%q) = %d, want %d", text, got, want)
		}
	}
}

func TestCanonicalKey(t *testing.T) {
	for _, c := range []struct {
		kind KeyKind
		text string
		ok   bool
	}{
		{KeyUUID, "0a1b2c3d-0000-4000-8000-00000000000f", true},
		{KeyUUID, "0A1B2C3D-0000-4000-8000-00000000000F", false},
		{KeyNumeric, "1.5", true},
		{KeyNumeric, "1.50", false},
		{KeyNumeric, "-0.000000001", true},
		{KeyNumeric, "1e5", false},
		{KeyNumeric, "1'; DROP", false},
		{KeyText, "any'thing\\", true},
		{KeyInt, "-42", true},
		{KeyInt, "4.2", false},
	} {
		if _, err := CanonicalKey(c.kind, c.text); (err == nil) != c.ok {
			t.Errorf("CanonicalKey(%s, %q): err = %v, want ok %v", c.kind, c.text, err, c.ok)
		}
	}
}
