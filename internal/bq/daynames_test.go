package bq

import (
	"regexp"
	"strings"
	"testing"
	"time"
)

// jobIDRE is BigQuery's rule for job ids: letters, digits, underscores
// and dashes, at most 1,024 characters
// (https://cloud.google.com/bigquery/docs/running-jobs#generate-jobid).
var jobIDRE = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// Every date of the contract, 0001-01-01..9999-12-31, gives a staging
// table name BigQuery accepts that names that date and no other, and the
// date label its job ids and partition decorator carry (YYYYMMDD) reads
// back as the date: no two dates share a staging table, a job id family
// or a decorator.
func TestDayNamesRoundTripEveryDate(t *testing.T) {
	t.Parallel()
	w := &Warehouse{dest: "activity_logs"}
	last := time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)
	n := 0
	for day := time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC); !day.After(last); day = day.AddDate(0, 0, 1) {
		n++
		name := w.Staging(day)
		label := strings.TrimPrefix(name, "pgbq_stage_"+w.dest+"_")
		if got, err := time.Parse("20060102", label); err != nil || !got.Equal(day) || len(label) != 8 {
			t.Fatalf("%s: staging table %q names %s (%v)", day.Format(time.DateOnly), name, got, err)
		}
		if n%97 != 0 && !day.Equal(last) && day.Year() > 1 {
			continue // the name rules and the job id's hash are the slow part: a sample
		}
		if !TableNameRE.MatchString(name) {
			t.Fatalf("%s: staging table %q is not a BigQuery table name", day.Format(time.DateOnly), name)
		}
		id := JobID("publish", day.Format("20060102"), w.dest, day.Year())
		if !jobIDRE.MatchString(id) || len(id) > 1024 || !strings.HasPrefix(id, "pgbq_publish_"+label+"_") {
			t.Fatalf("%s: job id %q", day.Format(time.DateOnly), id)
		}
	}
	if n != 3652059 {
		t.Fatalf("%d dates walked, want 3,652,059", n)
	}
}
