package bqfidelity

import (
	"slices"
	"testing"
)

func TestScanSQLFindsTheTablesAStatementChanges(t *testing.T) {
	t.Parallel()
	cases := []struct {
		sql  string
		want []string // verb table
		txn  bool
	}{
		{"SELECT * FROM d.t WHERE x = 'DELETE FROM d.u' -- UPDATE d.v SET", nil, false},
		{"BEGIN TRANSACTION; DELETE FROM `p.d.dest` WHERE TRUE; INSERT INTO `p`.`d`.`dest` (id) SELECT id FROM d.s; COMMIT TRANSACTION;",
			[]string{"DELETE p.d.dest", "INSERT p.d.dest"}, true},
		{"MERGE d.t T USING d.s S ON T.id = S.id WHEN MATCHED THEN UPDATE SET x = 1 WHEN NOT MATCHED BY SOURCE THEN DELETE WHEN NOT MATCHED THEN INSERT (id) VALUES (S.id)",
			[]string{"MERGE p.d.t"}, false},
		{"UPDATE t SET a = 1 WHERE TRUE", []string{"UPDATE p.def.t"}, false},
		{"TRUNCATE TABLE d.t", []string{"TRUNCATE p.d.t"}, false},
		{"ALTER TABLE IF EXISTS `p.d.t` ADD COLUMN x STRING", []string{"ALTER p.d.t"}, false},
		{"CREATE TEMP TABLE x AS SELECT 1; INSERT d.t (a) VALUES (1)", []string{"INSERT p.d.t"}, false},
	}
	for _, tc := range cases {
		stmts, txn := scanSQL(tc.sql, "p", "def")
		var got []string
		for _, s := range stmts {
			got = append(got, s.verb+" "+s.table.key())
		}
		if !slices.Equal(got, tc.want) || txn != tc.txn {
			t.Errorf("scanSQL(%q) = %v txn=%v, want %v txn=%v", tc.sql, got, txn, tc.want, tc.txn)
		}
	}
}

func TestSplitAlterMakesOneStatementPerAction(t *testing.T) {
	t.Parallel()
	got := splitAlter("ALTER TABLE `p.d.t` ADD COLUMN IF NOT EXISTS a STRUCT<x INT64, y STRING>, ADD COLUMN b NUMERIC(10, 2);")
	want := []string{
		"ALTER TABLE `p.d.t` ADD COLUMN IF NOT EXISTS a STRUCT<x INT64, y STRING>",
		"ALTER TABLE `p.d.t` ADD COLUMN b NUMERIC(10, 2)",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("got %q\nwant %q", got, want)
	}
	if got := splitAlter("ALTER TABLE t ADD COLUMN a STRING"); got != nil {
		t.Fatalf("a one-action ALTER was split: %q", got)
	}
}

func TestTranslateGivesBigQuerysReasonAndTableName(t *testing.T) {
	t.Parallel()
	dest := map[string]any{"destinationTable": map[string]any{"projectId": "p", "datasetId": "d", "tableId": "stage$20240102"}}
	cases := []struct {
		kind string
		in   *apiError
		want string // reason: message
	}{
		{"copy", &apiError{Code: 404, Reason: "notFound", Message: "Not found: table:p.d.missing"}, "notFound: Not found: Table p:d.missing"},
		{"load", &apiError{Code: 400, Reason: "invalid", Message: "Error while reading data, error message: Catalog Error: Table with name stage does not exist!"}, "notFound: Not found: Table p:d.stage"},
		{"query", &apiError{Code: 400, Reason: "invalid", Message: "bad"}, "invalidQuery: bad"},
		{"load", &apiError{Code: 500, Reason: "internalError", Message: "boom"}, "invalid: the emulator could not run this job: boom"},
	}
	for _, tc := range cases {
		e := withTable(translate(tc.kind, tc.in), dest, "p")
		if got := e.Reason + ": " + e.Message; got != tc.want {
			t.Errorf("%s %v: got %q, want %q", tc.kind, tc.in, got, tc.want)
		}
	}
}
