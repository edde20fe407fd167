package bq_test

import (
	"context"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/bigquery"

	"github.com/pgbq/pgbq/internal/bq"
	"github.com/pgbq/pgbq/internal/schema"
	"github.com/pgbq/pgbq/internal/testenv"
)

// A text key written into a statement (a position compared in staging)
// reads back as itself, whatever it holds: quotes, backslashes, control
// characters, characters beyond the BMP, text that looks like SQL.
func TestKeyLiteralRoundTrip(t *testing.T) {
	t.Parallel()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rnd := rand.New(rand.NewPCG(seed, 7))
	runes := []rune("a'\"\\\n\t\u0001 é😀中-_;`)(")
	keys := []string{"", "'", `\`, `\'`, "a'); SELECT 1; --"}
	for range 30 {
		var b strings.Builder
		for range rnd.IntN(8) {
			b.WriteRune(runes[rnd.IntN(len(runes))])
		}
		keys = append(keys, b.String())
	}
	lits := make([]string, len(keys))
	for i, k := range keys {
		lit, err := bq.KeyLiteral(schema.Key{Kind: schema.KeyText, Text: k})
		if err != nil {
			t.Fatal(err)
		}
		lits[i] = lit
	}
	b := testenv.BigQuery(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rows, err := bq.Rows[[]bigquery.Value](bq.RunQuery(ctx, b.Client, "SELECT ["+strings.Join(lits, ", ")+"] AS k"))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := rows[0][0].([]bigquery.Value)
	if len(got) != len(keys) {
		t.Fatalf("read back %d keys, want %d", len(got), len(keys))
	}
	for i, k := range keys {
		if got[i] != k {
			t.Errorf("key %q read back as %q", k, got[i])
		}
	}
	for _, bad := range []schema.Key{{Kind: schema.KeyNumeric, Text: "1; DROP"}, {Kind: schema.KeyUUID, Text: "x'"}} {
		if _, err := bq.KeyLiteral(bad); err == nil {
			t.Errorf("%s key %q written into a statement", bad.Kind, bad.Text)
		}
	}
}
