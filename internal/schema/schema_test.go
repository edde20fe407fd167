package schema

import (
	"bytes"
	"fmt"
	"testing"
)

func TestVectorBytesSurviveReuse(t *testing.T) {
	t.Parallel()
	var b Batch
	for round := 0; round < 3; round++ {
		b.Reset(1)
		v := &b.Vectors[0]
		var want [][]byte
		for i := 0; i < 5000; i++ {
			val := bytes.Repeat([]byte(fmt.Sprintf("%d-%d;", round, i)), i%50)
			if i%7 == 0 {
				val = nil
			}
			want = append(want, val)
			v.AppendBytes(val)
		}
		for i := range want {
			if !bytes.Equal(v.BytesAt(i), want[i]) {
				t.Fatalf("round %d value %d = %q, want %q", round, i, v.BytesAt(i), want[i])
			}
		}
	}
}
