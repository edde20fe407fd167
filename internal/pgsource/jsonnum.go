package pgsource

import (
	"fmt"
	"math/big"
	"strconv"
)

// BigQuery's JSON holds a number as an int64, a uint64 or a float64, and
// PARSE_JSON, which the publish turns staged JSON text into JSON with
// (bq.StagingSchema), fails by default (wide_number_mode 'exact') on a
// number that none of them holds without loss
// (https://cloud.google.com/bigquery/docs/reference/standard-sql/json_functions#parse_json).
// So a JSON value is checked while the day is read: a number such as
// 12345678901234567890123 or 0.10000000000000000001 stops the date with
// an error naming the row and the column, instead of failing the MERGE of
// a batch of days, or being rounded silently.

// checkJSONNumbers refuses a JSON text with a number BigQuery cannot hold
// exactly. Strings are skipped; the text is valid JSON (PostgreSQL
// checked it).
func checkJSONNumbers(raw []byte) error {
	for i := 0; i < len(raw); i++ {
		switch c := raw[i]; {
		case c == '"':
			for i++; i < len(raw) && raw[i] != '"'; i++ {
				if raw[i] == '\\' {
					i++
				}
			}
		case c == '-' || c >= '0' && c <= '9':
			j := i
			for j < len(raw) && isNumberByte(raw[j]) {
				j++
			}
			if err := exactJSONNumber(raw[i:j]); err != nil {
				return err
			}
			i = j - 1
		}
	}
	return nil
}

func isNumberByte(c byte) bool {
	return c >= '0' && c <= '9' || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E'
}

// exactJSONNumber accepts an integer of int64 or uint64, or a number that
// a float64 holds: the float64's shortest text reads back as the number
// itself (0.1), or the float64 is exactly the number (2^64).
func exactJSONNumber(num []byte) error {
	digits, plain := 0, true
	for _, c := range num {
		switch {
		case c >= '0' && c <= '9':
			if digits > 0 || c != '0' {
				digits++
			}
		case c != '-':
			plain = false
		}
	}
	s := string(num)
	if plain {
		if _, err := strconv.ParseInt(s, 10, 64); err == nil {
			return nil
		}
		if _, err := strconv.ParseUint(s, 10, 64); err == nil {
			return nil
		}
	} else if digits <= 15 && !hasExponent(num) {
		return nil // at most 15 significant digits: float64 keeps them
	}
	f, err := strconv.ParseFloat(s, 64)
	if err == nil {
		want, ok1 := new(big.Rat).SetString(s)
		got, ok2 := new(big.Rat).SetString(strconv.FormatFloat(f, 'g', -1, 64))
		if ok1 && ok2 && want.Cmp(got) == 0 {
			return nil
		}
		if exact, _ := new(big.Float).SetFloat64(f).Rat(nil); ok1 && exact != nil && want.Cmp(exact) == 0 {
			return nil
		}
	}
	return fmt.Errorf("%w: JSON number %s cannot be held exactly by BigQuery JSON (int64, uint64 or float64): "+
		"store it as a JSON string in PostgreSQL, or round it there", errValue, s)
}

func hasExponent(num []byte) bool {
	for _, c := range num {
		if c == 'e' || c == 'E' {
			return true
		}
	}
	return false
}
