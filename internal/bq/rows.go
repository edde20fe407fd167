package bq

import (
	"errors"
	"fmt"
	"iter"

	"cloud.google.com/go/bigquery"
	"google.golang.org/api/iterator"
)

// Each reads a query's result row by row into a T — a struct whose
// fields take the columns of the same name (the client's rules;
// `bigquery:"name"` tags; NULL only into bigquery.Null* fields), or
// []bigquery.Value — yielding each as it arrives; an error is yielded
// once and ends the sequence. It takes a query's two results:
//
//	for row, err := range bq.Each[T](bq.RunQuery(ctx, client, sql)) {
func Each[T any](it *bigquery.RowIterator, err error) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		var zero T
		if err != nil {
			yield(zero, err)
			return
		}
		for {
			var row T
			err := it.Next(&row)
			if errors.Is(err, iterator.Done) {
				return
			}
			if err != nil {
				yield(zero, err)
				return
			}
			if !yield(row, nil) {
				return
			}
		}
	}
}

// Rows is Each collecting every row: Rows[T](RunQuery(ctx, client, sql)).
func Rows[T any](it *bigquery.RowIterator, err error) ([]T, error) {
	var out []T
	for row, err := range Each[T](it, err) {
		if err != nil {
			return nil, err
		}
		out = append(out, row)
	}
	return out, nil
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
