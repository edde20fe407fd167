// Command bqquery runs one SQL statement against BigQuery or the local
// emulator and prints the rows tab-separated, for the demo and for people
// looking into a local run.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"cloud.google.com/go/bigquery"

	"github.com/pgbq/pgbq/internal/bq"
)

func main() {
	endpoint := flag.String("endpoint", os.Getenv("BQ_ENDPOINT"), "BigQuery endpoint (default $BQ_ENDPOINT; empty: BigQuery itself)")
	project := flag.String("project", os.Getenv("BQ_PROJECT"), "project (default $BQ_PROJECT)")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: bqquery [--endpoint URL] [--project P] 'SQL'")
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	client, err := bq.NewClient(ctx, bq.Config{Project: *project, Endpoint: *endpoint})
	if err != nil {
		fail(err)
	}
	defer client.Close()
	it, err := bq.RunQuery(ctx, client, flag.Arg(0))
	rows, err := bq.Rows[[]bigquery.Value](it, err)
	if err != nil {
		fail(err)
	}
	if len(rows) == 0 {
		return
	}
	names := make([]string, len(it.Schema))
	for i, f := range it.Schema {
		names[i] = f.Name
	}
	fmt.Println(strings.Join(names, "\t"))
	for _, row := range rows {
		cells := make([]string, len(row))
		for i, v := range row {
			cells[i] = cell(v)
		}
		fmt.Println(strings.Join(cells, "\t"))
	}
}

// cell prints one value; timestamps to the microsecond, as BigQuery keeps them.
func cell(v bigquery.Value) string {
	switch t := v.(type) {
	case nil:
		return "NULL"
	case time.Time:
		return t.UTC().Format("2006-01-02T15:04:05.000000Z07:00")
	default:
		return fmt.Sprint(t)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "bqquery:", err)
	os.Exit(1)
}
