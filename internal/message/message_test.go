package message

import (
	"errors"
	"testing"
	"time"
)

func TestDecode(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		in   string
		ok   bool
	}{
		{"valid", `{"table":"activity_logs","date":"2024-03-01"}`, true},
		{"not json", `table=activity_logs`, false},
		{"empty", ``, false},
		{"array", `["activity_logs","2024-03-01"]`, false},
		{"bad date", `{"table":"activity_logs","date":"2024-02-30"}`, false},
		{"date with time", `{"table":"activity_logs","date":"2024-03-01T00:00:00Z"}`, false},
		{"sql in table", `{"table":"x; DROP TABLE y","date":"2024-03-01"}`, false},
		{"quote in table", "{\"table\":\"a`b\",\"date\":\"2024-03-01\"}", false},
		{"unknown field", `{"table":"a","date":"2024-03-01","x":1}`, false},
		{"trailing", `{"table":"a","date":"2024-03-01"}{}`, false},
		{"missing table", `{"date":"2024-03-01"}`, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m, day, err := Decode([]byte(tc.in))
			if tc.ok {
				if err != nil {
					t.Fatalf("Decode: %v", err)
				}
				if m.Table != "activity_logs" || !day.Equal(time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)) {
					t.Fatalf("Decode = %+v %v", m, day)
				}
				return
			}
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Decode(%q) error = %v, want ErrInvalid", tc.in, err)
			}
		})
	}
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	day := time.Date(2025, 12, 31, 0, 0, 0, 0, time.UTC)
	m, got, err := Decode(New("t1", day).Encode())
	if err != nil || m.Table != "t1" || !got.Equal(day) {
		t.Fatalf("round trip = %+v %v %v", m, got, err)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"table":"activity_logs","date":"2024-03-01"}`))
	f.Add([]byte(`{"table":"","date":""}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, day, err := Decode(data)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error not ErrInvalid: %v", err)
			}
			return
		}
		if !tableRE.MatchString(m.Table) {
			t.Fatalf("accepted table %q", m.Table)
		}
		if day.Format(time.DateOnly) != m.Date {
			t.Fatalf("date %q decoded as %v", m.Date, day)
		}
	})
}
