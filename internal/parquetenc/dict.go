package parquetenc

import (
	"bytes"
	"encoding/binary"
	"hash/maphash"
	"math/bits"

	"github.com/pgbq/pgbq/internal/schema"
)

// dictionary is a column chunk's dictionary while it is being built.
type dictionary struct {
	n     int
	table hashTable
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
	// The dictionary pays only if it ends with at most one entry for
	// every 8 values (below): past that it is given up at once.
	nonNull := 0
	for _, ok := range vals.Valid[:n] {
		if ok {
			nonNull++
		}
	}
	most := nonNull / 8
	d.table.reset(min(most, dictMaxEntries) + 1)
	switch l.physical {
	case ptBytes, ptFixed:
		for k := 0; k < n; k++ {
			if !vals.Valid[k] {
				continue
			}
			p := vals.BytesAt(k)
			if len(p) > dictMaxBytes/16 {
				return false // values this long do not repeat enough to pay
			}
			id, ok := d.findBytes(p)
			if !ok {
				d.data = append(d.data, p...)
				d.offs = append(d.offs, uint32(len(d.data)))
				if d.n > most || d.tooBig(len(ix)+1) {
					return false
				}
			}
			ix = append(ix, id)
		}
	case ptInt64, ptInt32:
		size := 8
		for k := 0; k < n; k++ {
			if !vals.Valid[k] {
				continue
			}
			x := vals.Ints[k]
			id, ok := d.findInt(x)
			if !ok {
				d.order = append(d.order, x)
				if d.n > most || d.tooBig(len(ix)+1) || len(d.order)*size > dictMaxBytes {
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

// hashTable maps a dictionary's values to their indices: open addressing
// with linear probing over a power-of-two array of slots, at most half
// full. A slot holds the index + 1 (0: empty) and, for byte values, 32
// bits of the value's hash, so that most probes that miss compare no
// bytes. It costs a fraction of a Go map lookup with a string key, and
// nothing is allocated a value.
type hashTable struct {
	slots []uint64
	shift uint // 64 - log2(len(slots))
	used  int
}

// reset empties the table, sized for at most entries entries: it never
// grows then, and its array is reused from one column to the next.
func (t *hashTable) reset(entries int) {
	size := 1 << 8
	for size < 2*(entries+1) {
		size <<= 1
	}
	if cap(t.slots) >= size {
		t.slots = t.slots[:size]
		clear(t.slots)
	} else {
		t.slots = make([]uint64, size)
	}
	t.shift = uint(64 - bits.TrailingZeros(uint(size)))
	t.used = 0
}

// grow doubles the table (when it is half full); rehash gives a slot's
// hash.
func (t *hashTable) grow(rehash func(slot uint64) uint64) {
	old := t.slots
	t.slots = make([]uint64, 2*len(old))
	t.shift--
	mask := uint64(len(t.slots) - 1)
	for _, s := range old {
		if s == 0 {
			continue
		}
		i := rehash(s) >> t.shift
		for t.slots[i] != 0 {
			i = (i + 1) & mask
		}
		t.slots[i] = s
	}
}

const mix = 0x9E3779B97F4A7C15 // Fibonacci hashing: the top bits pick the slot

// findInt returns x's index, adding x (ok false) if it is new.
func (d *dictionary) findInt(x int64) (id uint32, ok bool) {
	t := &d.table
	if 2*(t.used+1) > len(t.slots) {
		t.grow(func(s uint64) uint64 { return uint64(d.order[uint32(s)-1]) * mix })
	}
	mask := uint64(len(t.slots) - 1)
	for i := (uint64(x) * mix) >> t.shift; ; i = (i + 1) & mask {
		s := t.slots[i]
		if s == 0 {
			id = uint32(d.n)
			d.n++
			t.used++
			t.slots[i] = uint64(id) + 1
			return id, false
		}
		if d.order[uint32(s)-1] == x {
			return uint32(s) - 1, true
		}
	}
}

// findBytes returns p's index, adding its index (ok false) if it is new;
// the caller appends p to d.data then.
func (d *dictionary) findBytes(p []byte) (id uint32, ok bool) {
	t := &d.table
	if 2*(t.used+1) > len(t.slots) {
		t.grow(func(s uint64) uint64 { return (s >> 32) * mix })
	}
	h := uint64(uint32(hashBytes(p)))
	mask := uint64(len(t.slots) - 1)
	for i := (h * mix) >> t.shift; ; i = (i + 1) & mask {
		s := t.slots[i]
		if s == 0 {
			id = uint32(d.n)
			d.n++
			t.used++
			t.slots[i] = h<<32 | (uint64(id) + 1)
			return id, false
		}
		if s>>32 == h {
			k := uint32(s) - 1
			if bytes.Equal(d.data[d.offs[k]:d.offs[k+1]], p) {
				return k, true
			}
		}
	}
}

// hashBytes hashes a value: values of up to 16 bytes (most dictionary
// values: labels, paths, addresses, decimals) by one 64-bit multiply of
// their words, in line; longer ones by the runtime's hash. Indices are
// given in order of first appearance, so the files do not depend on the
// hash.
func hashBytes(p []byte) uint64 {
	n := len(p)
	var a, b uint64
	switch {
	case n > 16:
		return maphash.Bytes(seed, p)
	case n >= 8:
		a, b = binary.LittleEndian.Uint64(p), binary.LittleEndian.Uint64(p[n-8:])
	case n >= 4:
		a, b = uint64(binary.LittleEndian.Uint32(p)), uint64(binary.LittleEndian.Uint32(p[n-4:]))
	case n > 0:
		a = uint64(p[0])<<16 | uint64(p[n>>1])<<8 | uint64(p[n-1])
	}
	hi, lo := bits.Mul64(a^0xa0761d6478bd642f^uint64(n), b^0xe7037ed1a0b428db)
	return hi ^ lo
}

var seed = maphash.MakeSeed()

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
