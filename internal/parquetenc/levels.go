package parquetenc

import "encoding/binary"

// appendHybrid appends vals in Parquet's RLE / bit-packing hybrid encoding
// with the given bit width (1..32): a run of 8 or more equal values as one
// RLE run, everything else bit-packed in groups of 8.
func appendHybrid[T uint8 | uint32](dst []byte, vals []T, width uint) []byte {
	n := len(vals)
	valueBytes := int(width+7) / 8
	i := 0
	for i < n {
		if r := runLength(vals, i); r >= 8 {
			dst = binary.AppendUvarint(dst, uint64(r)<<1)
			v := uint32(vals[i])
			for k := 0; k < valueBytes; k++ {
				dst = append(dst, byte(v>>(8*k)))
			}
			i += r
			continue
		}
		// Bit-pack groups of 8 until a long run starts at a group boundary.
		start := i
		for i < n {
			i += 8
			if i < n && runLength(vals, i) >= 8 {
				break
			}
		}
		groups := (i - start) / 8 // i-start is a multiple of 8
		dst = binary.AppendUvarint(dst, uint64(groups)<<1|1)
		dst = appendBitPacked(dst, vals[start:min(i, n)], groups*8, width)
	}
	return dst
}

// runLength is the number of values equal to vals[i] from i on, counting
// no further than needed to decide a run (it stops at 1<<20).
func runLength[T uint8 | uint32](vals []T, i int) int {
	v := vals[i]
	j := i + 1
	for j < len(vals) && vals[j] == v && j-i < 1<<20 {
		j++
	}
	return j - i
}

// appendBitPacked packs vals LSB first into width bits each, padded with
// zeros to count values.
func appendBitPacked[T uint8 | uint32](dst []byte, vals []T, count int, width uint) []byte {
	var acc uint64
	var bits uint
	for k := 0; k < count; k++ {
		var v uint64
		if k < len(vals) {
			v = uint64(vals[k])
		}
		acc |= v << bits
		bits += width
		for bits >= 8 {
			dst = append(dst, byte(acc))
			acc >>= 8
			bits -= 8
		}
	}
	if bits > 0 {
		dst = append(dst, byte(acc))
	}
	return dst
}

// appendLevels appends levels as a data page v1 levels section: a 4-byte
// little-endian length, then the hybrid encoding.
func appendLevels(dst []byte, levels []uint8, width uint) []byte {
	at := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	dst = appendHybrid(dst, levels, width)
	binary.LittleEndian.PutUint32(dst[at:], uint32(len(dst)-at-4))
	return dst
}
