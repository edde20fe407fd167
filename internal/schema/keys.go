package schema

import (
	"crypto/md5" //nolint:gosec // a fingerprint, not a secret: both databases offer MD5
	"encoding/binary"
	"fmt"
	"regexp"
	"strings"
)

// KeyHash is a row's share of DayFingerprint.Hash: the first 32 bits of
// the MD5 of its fingerprint text, as an unsigned number. PostgreSQL
// computes it as ('x' || substr(md5(t), 1, 8))::bit(32)::bigint, BigQuery
// as SAFE_CAST(CONCAT('0x', SUBSTR(TO_HEX(MD5(t)), 1, 8)) AS INT64); the
// loader computes it here for the rows it loaded itself. A sum of 2^31
// such values fits an int64, far more rows than a day of one table holds.
func KeyHash(text string) int64 {
	return KeyHashBytes([]byte(text))
}

// KeyHashBytes is KeyHash of text held as bytes.
func KeyHashBytes(text []byte) int64 {
	sum := md5.Sum(text) //nolint:gosec // see the import
	return int64(binary.BigEndian.Uint32(sum[:4]))
}

var (
	uuidRE    = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	decimalRE = regexp.MustCompile(`^-?[0-9]+(\.[0-9]*[1-9])?$`)
)

// CanonicalKey checks that text is the canonical form of a key of kind
// (as both databases write it: a uuid lowercase and hyphenated, a numeric
// with no trailing fractional zeros and no exponent, text as it is) and
// returns it; a key read back from sync_control or staging goes through
// it before it is written into a statement.
func CanonicalKey(kind KeyKind, text string) (string, error) {
	switch kind {
	case KeyText:
		return text, nil
	case KeyUUID:
		if uuidRE.MatchString(text) {
			return text, nil
		}
	case KeyNumeric:
		if decimalRE.MatchString(text) && text != "-0" {
			return text, nil
		}
	case KeyInt:
		if decimalRE.MatchString(text) && !strings.Contains(text, ".") && text != "-0" {
			return text, nil
		}
	}
	return "", fmt.Errorf("%q is not the canonical text of a %s key", text, kind)
}
