package parquetenc

import (
	"encoding/binary"

	"github.com/pgbq/pgbq/internal/schema"
)

// dictionary is a column chunk's dictionary while it is being built.
type dictionary struct {
	n     int
	bytes map[string]uint32
	ints  map[int64]uint32
	data  []byte   // byte values in index order, back to back
	offs  []uint32 // data offsets: value i is data[offs[i]:offs[i+1]]
	order []int64  // integer values in index order
}

// build tries a dictionary for the non-null values of vals[:n], filling
// idx with their indices; false means PLAIN is smaller or the dictionary
// grew past its limits.
func (d *dictionary) build(l *leaf, vals *schema.Vector, n int, idx *[]uint32) bool {
	d.n = 0
	d.data, d.offs, d.order = d.data[:0], append(d.offs[:0], 0), d.order[:0]
	ix := (*idx)[:0]
	defer func() { *idx = ix }()
	switch l.physical {
	case ptBytes, ptFixed:
		if d.bytes == nil {
			d.bytes = make(map[string]uint32)
		}
		clear(d.bytes)
		for k := 0; k < n; k++ {
			if !vals.Valid[k] {
				continue
			}
			p := vals.BytesAt(k)
			if len(p) > dictMaxBytes/16 {
				return false // values this long do not repeat enough to pay
			}
			id, ok := d.bytes[string(p)]
			if !ok {
				id = uint32(d.n)
				d.n++
				d.bytes[string(p)] = id
				d.data = append(d.data, p...)
				d.offs = append(d.offs, uint32(len(d.data)))
				if d.tooBig(len(ix) + 1) {
					return false
				}
			}
			ix = append(ix, id)
		}
	case ptInt64, ptInt32:
		size := 8
		if d.ints == nil {
			d.ints = make(map[int64]uint32)
		}
		clear(d.ints)
		for k := 0; k < n; k++ {
			if !vals.Valid[k] {
				continue
			}
			x := vals.Ints[k]
			id, ok := d.ints[x]
			if !ok {
				id = uint32(d.n)
				d.n++
				d.ints[x] = id
				d.order = append(d.order, x)
				if d.tooBig(len(ix)+1) || len(d.order)*size > dictMaxBytes {
					return false
				}
			}
			ix = append(ix, id)
		}
	default:
		return false
	}
	if d.n == 0 {
		return false
	}
	// Worth it when values repeat a lot: zstd then has far less to read,
	// and the file is smaller. With fewer repeats zstd alone does better
	// on the plain values (measured on the bench table's JSON column).
	return d.n <= len(ix)/8
}

// tooBig says whether the dictionary passed its limits after seen values:
// too many entries or bytes, or, past a probe, too few repeats to be
// kept in the end (building it costs a hash lookup a value).
func (d *dictionary) tooBig(seen int) bool {
	return d.n > dictMaxEntries || len(d.data) > dictMaxBytes || (seen >= dictProbe && d.n > seen/2)
}

// appendPlain appends the dictionary's values in PLAIN encoding: the
// dictionary page's body.
func (d *dictionary) appendPlain(dst []byte, l *leaf) []byte {
	switch l.physical {
	case ptInt64:
		for _, x := range d.order {
			dst = binary.LittleEndian.AppendUint64(dst, uint64(x))
		}
	case ptInt32:
		for _, x := range d.order {
			dst = binary.LittleEndian.AppendUint32(dst, uint32(int32(x)))
		}
	case ptBytes:
		for i := 0; i < d.n; i++ {
			p := d.data[d.offs[i]:d.offs[i+1]]
			dst = binary.LittleEndian.AppendUint32(dst, uint32(len(p)))
			dst = append(dst, p...)
		}
	case ptFixed:
		dst = append(dst, d.data...)
	}
	return dst
}
