package pgsource

import (
	"errors"
	"testing"

	"github.com/pgbq/pgbq/internal/schema"
)

// JSON numbers BigQuery's JSON holds exactly (int64, uint64, float64) pass;
// others stop the value with errValue, never a silent rounding. Digits in
// strings and keys are text, not numbers.
func TestJSONNumbersExact(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		json string
		ok   bool
	}{
		{`{"a": 1, "b": -9223372036854775808, "c": 18446744073709551615}`, true},
		{`[0.1, 2.5e-3, 1e22, -0, 1.0, 123456789012345, 0.000001]`, true},
		{`{"big": "123456789012345678901234567890", "1e400": true}`, true},
		{`9007199254740993.5`, false},
		{`{"n": 123456789012345678901234567890}`, false},
		{`[1, 18446744073709551616]`, true}, // 2^64: a float64 holds it exactly
		{`[1, 18446744073709551617]`, false},
		{`0.10000000000000000001`, false},
		{`1e400`, false},
		{`1e-400`, false},
		{`{"s": "a \" 1e400 \\", "n": 2}`, true},
	} {
		err := checkJSONNumbers([]byte(tc.json))
		if tc.ok != (err == nil) || err != nil && !errors.Is(err, errValue) {
			t.Errorf("%s: error %v, want ok=%v", tc.json, err, tc.ok)
		}
	}
	// Through the decoder, jsonb included.
	var v schema.Vector
	c := column{Column: schema.Column{Type: schema.JSON}, oid: oidJSONB, utf8: true}
	if err := appendValue(&v, &c, []byte("\x01{\"x\": 123456789012345678901234567890}")); err == nil || !errors.Is(err, errValue) {
		t.Fatalf("jsonb with a wide number: %v, want errValue", err)
	}
}
