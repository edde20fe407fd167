package bq

import (
	"errors"
	"fmt"

	"cloud.google.com/go/bigquery"
	"google.golang.org/api/iterator"
)

// Rows reads every row of a query's result into a T: a struct whose fields
// take the columns of the same name (the client's rules; `bigquery:"name"`
// tags; NULL only into bigquery.Null* fields), or []bigquery.Value. It
// takes a query's two results, as in Rows[T](RunQuery(ctx, client, sql)).
func Rows[T any](it *bigquery.RowIterator, err error) ([]T, error) {
	if err != nil {
		return nil, err
	}
	var out []T
	for {
		var row T
		err := it.Next(&row)
		if errors.Is(err, iterator.Done) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		out = append(out, row)
	}
}

// Row is Rows for a result of exactly one row (an aggregate).
func Row[T any](it *bigquery.RowIterator, err error) (T, error) {
	rows, err := Rows[T](it, err)
	if err == nil && len(rows) != 1 {
		err = fmt.Errorf("want one result row, got %d", len(rows))
	}
	if err != nil {
		var zero T
		return zero, err
	}
	return rows[0], nil
}
