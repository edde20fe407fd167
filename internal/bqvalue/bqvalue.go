// Package bqvalue renders a value read from BigQuery as the text a
// comparison with its PostgreSQL source uses: the loader's every-type test
// and `make cloud-check` compare each column so, against PostgreSQL's own
// rendering of the same values (bytes as hex, instants in UTC to the
// microsecond, repeated values joined by "|").
package bqvalue

import (
	"encoding/hex"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"time"

	"cloud.google.com/go/bigquery"
	"cloud.google.com/go/civil"
)

// Null is the text of a NULL.
const Null = "<null>"

// Text is v as comparison text.
func Text(v bigquery.Value) string {
	switch x := v.(type) {
	case nil:
		return Null
	case string:
		return x
	case int64:
		return strconv.FormatInt(x, 10)
	case bool:
		return strconv.FormatBool(x)
	case []byte:
		return hex.EncodeToString(x)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case *big.Rat:
		return x.RatString()
	case civil.Date:
		return x.String()
	case civil.Time:
		return fmt.Sprintf("%02d:%02d:%02d.%06d", x.Hour, x.Minute, x.Second, x.Nanosecond/1000)
	case civil.DateTime:
		return x.Date.String() + "T" + Text(x.Time)
	case time.Time:
		return x.UTC().Format("2006-01-02T15:04:05.000000")
	case []bigquery.Value:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = Text(e)
		}
		return strings.Join(parts, "|")
	}
	return fmt.Sprintf("%T %v", v, v)
}
