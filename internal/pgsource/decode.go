package pgsource

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"time"
	"unicode/utf8"

	"github.com/pgbq/pgbq/internal/schema"
)

// PostgreSQL's binary dates and timestamps count from 2000-01-01.
const (
	pgEpochDays   = 10957           // days from 1970-01-01 to 2000-01-01
	pgEpochMicros = 946684800000000 // microseconds from 1970-01-01 to 2000-01-01
	// BigQuery holds 0001-01-01 through 9999-12-31.
	minMicros = -62135596800000000
	maxMicros = 253402300799999999
	minDays   = -719162
	maxDays   = 2932896
)

var errValue = errors.New("value cannot be represented in BigQuery")

// appendValue decodes one raw PostgreSQL value into the column's vector.
func appendValue(v *schema.Vector, c *column, raw []byte) error {
	if c.elem != nil {
		return appendArray(v, c, raw)
	}
	if raw == nil {
		v.Valid = append(v.Valid, false)
		switch c.Type {
		case schema.Int64, schema.Date, schema.Timestamp, schema.Datetime, schema.Time:
			v.Ints = append(v.Ints, 0)
		case schema.Float64:
			v.Floats = append(v.Floats, 0)
		case schema.Bool:
			v.Bools = append(v.Bools, false)
		default:
			v.AppendBytes(nil)
		}
		return nil
	}
	v.Valid = append(v.Valid, true)
	switch c.Type {
	case schema.Int64:
		n, err := decodeInt(raw)
		if err != nil {
			return err
		}
		v.Ints = append(v.Ints, n)
	case schema.Float64:
		switch len(raw) {
		case 4:
			v.Floats = append(v.Floats, float64(math.Float32frombits(binary.BigEndian.Uint32(raw))))
		case 8:
			v.Floats = append(v.Floats, math.Float64frombits(binary.BigEndian.Uint64(raw)))
		default:
			return fmt.Errorf("float of %d bytes", len(raw))
		}
	case schema.Bool:
		v.Bools = append(v.Bools, len(raw) == 1 && raw[0] != 0)
	case schema.Bytes:
		v.AppendBytes(raw)
	case schema.String:
		if c.oid == oidChar && len(raw) == 1 && raw[0] == 0 {
			raw = raw[:0] // "char" stores '' as a NUL byte
		}
		if !c.utf8 {
			if err := validUTF8(raw); err != nil {
				return err
			}
		}
		v.AppendBytes(raw)
	case schema.JSON:
		if c.oid == oidJSONB {
			if len(raw) == 0 || raw[0] != 1 {
				return errors.New("unknown jsonb binary version")
			}
			raw = raw[1:]
		}
		if !c.utf8 {
			if err := validUTF8(raw); err != nil {
				return err
			}
		}
		if err := checkJSONNumbers(raw); err != nil {
			return err
		}
		v.AppendBytes(raw)
	case schema.Date:
		if len(raw) != 4 {
			return fmt.Errorf("date of %d bytes", len(raw))
		}
		d := int64(int32(binary.BigEndian.Uint32(raw))) + pgEpochDays
		if d < minDays || d > maxDays {
			return fmt.Errorf("%w: date %s is outside 0001-01-01..9999-12-31", errValue, pgDateText(raw))
		}
		v.Ints = append(v.Ints, d)
	case schema.Timestamp, schema.Datetime:
		us, err := decodeTimestamp(raw)
		if err != nil {
			return err
		}
		v.Ints = append(v.Ints, us)
	case schema.Time:
		if len(raw) != 8 {
			return fmt.Errorf("time of %d bytes", len(raw))
		}
		us := int64(binary.BigEndian.Uint64(raw))
		if us >= 86_400_000_000 {
			return fmt.Errorf("%w: time 24:00:00 (BigQuery TIME ends at 23:59:59.999999)", errValue)
		}
		v.Ints = append(v.Ints, us)
	case schema.Numeric:
		dec, err := scaledDecimal(raw)
		if err != nil {
			return err
		}
		v.AppendBytes(dec[:])
	default:
		return fmt.Errorf("no decoder for %s", c.Type)
	}
	return nil
}

// validUTF8 refuses text BigQuery cannot hold: STRING and JSON are UTF-8,
// but a "char" byte of a multi-byte letter, or any text of a SQL_ASCII
// database, can be anything. Failing names the value's place (the caller
// adds table, column and id); changing it silently is not an option.
func validUTF8(raw []byte) error {
	if utf8.Valid(raw) {
		return nil
	}
	at := 0
	for at < len(raw) {
		r, n := utf8.DecodeRune(raw[at:])
		if r == utf8.RuneError && n <= 1 {
			break
		}
		at += n
	}
	return fmt.Errorf("%w: text is not valid UTF-8 (byte 0x%02x at offset %d); BigQuery STRING holds only UTF-8: "+
		"convert the value to UTF-8 in PostgreSQL", errValue, raw[at], at)
}

func decodeInt(raw []byte) (int64, error) {
	switch len(raw) {
	case 2:
		return int64(int16(binary.BigEndian.Uint16(raw))), nil
	case 4:
		return int64(int32(binary.BigEndian.Uint32(raw))), nil
	case 8:
		return int64(binary.BigEndian.Uint64(raw)), nil
	}
	return 0, fmt.Errorf("integer of %d bytes", len(raw))
}

// decodeTimestamp returns microseconds since 1970-01-01.
func decodeTimestamp(raw []byte) (int64, error) {
	if len(raw) != 8 {
		return 0, fmt.Errorf("timestamp of %d bytes", len(raw))
	}
	us := int64(binary.BigEndian.Uint64(raw))
	switch us {
	case math.MaxInt64:
		return 0, fmt.Errorf("%w: timestamp infinity", errValue)
	case math.MinInt64:
		return 0, fmt.Errorf("%w: timestamp -infinity", errValue)
	}
	us += pgEpochMicros
	if us < minMicros || us > maxMicros {
		return 0, fmt.Errorf("%w: timestamp %s is outside years 1..9999", errValue, time.UnixMicro(us).UTC().Format(time.RFC3339Nano))
	}
	return us, nil
}

func pgDateText(raw []byte) string {
	d := int32(binary.BigEndian.Uint32(raw))
	switch d {
	case math.MaxInt32:
		return "infinity"
	case math.MinInt32:
		return "-infinity"
	}
	return time.Unix((int64(d)+pgEpochDays)*86400, 0).UTC().Format("2006-01-02")
}

// scaledDecimal turns PostgreSQL's text form of a numeric whose declared
// scale is at most 9 into the 16-byte big-endian two's complement integer
// of value * 10^9 that a Parquet DECIMAL(38,9) holds.
func scaledDecimal(text []byte) ([16]byte, error) {
	var out [16]byte
	s := text
	neg := false
	if len(s) > 0 && (s[0] == '-' || s[0] == '+') {
		neg = s[0] == '-'
		s = s[1:]
	}
	var hi, lo uint64
	over := false // the value passed 128 bits
	frac := -1
	digits := 0
	for _, ch := range s {
		if ch == '.' && frac < 0 {
			frac = 0
			continue
		}
		if ch < '0' || ch > '9' {
			return out, fmt.Errorf("%w: numeric %q", errValue, text)
		}
		if frac >= 0 {
			frac++
		}
		hi, lo, over = mul10add(hi, lo, uint64(ch-'0'), over)
		digits++
	}
	if digits == 0 || frac > schema.NumericScale {
		return out, fmt.Errorf("%w: numeric %q", errValue, text)
	}
	if frac < 0 {
		frac = 0
	}
	for ; frac < schema.NumericScale; frac++ {
		hi, lo, over = mul10add(hi, lo, 0, over)
	}
	if over || hi>>63 != 0 {
		return out, fmt.Errorf("%w: numeric %q exceeds NUMERIC", errValue, text)
	}
	if neg {
		lo = ^lo + 1
		hi = ^hi
		if lo == 0 {
			hi++
		}
	}
	binary.BigEndian.PutUint64(out[:8], hi)
	binary.BigEndian.PutUint64(out[8:], lo)
	return out, nil
}

// mul10add is (hi, lo)*10 + d; over becomes true once the result passes
// 128 bits.
func mul10add(hi, lo, d uint64, over bool) (uint64, uint64, bool) {
	carryHi, l := bits.Mul64(lo, 10)
	l, c := bits.Add64(l, d, 0)
	top, h := bits.Mul64(hi, 10)
	h, c1 := bits.Add64(h, carryHi, 0)
	h, c2 := bits.Add64(h, c, 0)
	return h, l, over || top != 0 || c1 != 0 || c2 != 0
}

// appendArray decodes a binary array into the vector's elements. BigQuery
// has no NULL array and no NULL element: a NULL array arrives as [], a
// NULL element or a second dimension is an error.
func appendArray(v *schema.Vector, c *column, raw []byte) error {
	if v.Elem == nil {
		v.Elem = &schema.Vector{}
	}
	if len(v.ListOffsets) == 0 {
		v.ListOffsets = append(v.ListOffsets, 0)
	}
	v.Valid = append(v.Valid, true)
	if raw != nil {
		if len(raw) < 12 {
			return fmt.Errorf("array of %d bytes", len(raw))
		}
		ndim := int32(binary.BigEndian.Uint32(raw))
		if ndim > 1 {
			return fmt.Errorf("%w: a %d-dimensional array (BigQuery arrays have one)", errValue, ndim)
		}
		p := raw[12:]
		if ndim == 1 {
			if len(p) < 8 {
				return errors.New("truncated array header")
			}
			n := int(int32(binary.BigEndian.Uint32(p)))
			p = p[8:]
			for i := 0; i < n; i++ {
				if len(p) < 4 {
					return errors.New("truncated array")
				}
				l := int32(binary.BigEndian.Uint32(p))
				p = p[4:]
				if l < 0 {
					return fmt.Errorf("%w: a NULL array element (BigQuery arrays cannot hold NULL)", errValue)
				}
				if int(l) > len(p) {
					return errors.New("truncated array element")
				}
				if err := appendValue(v.Elem, c.elem, p[:l]); err != nil {
					return err
				}
				p = p[l:]
			}
		}
	}
	v.ListOffsets = append(v.ListOffsets, uint32(len(v.Elem.Valid)))
	return nil
}
