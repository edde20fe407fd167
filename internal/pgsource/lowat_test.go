package pgsource

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"net"
	"testing"
	"time"
)

// A batchedConn returns every byte in order whatever the pace of the
// sender: a stream in PostgreSQL's 8 KB pieces, pauses longer than its
// wait, and short replies that must not be held back.
func TestBatchedConnReadsEverything(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	var sent bytes.Buffer
	// rounds: a streamed result, then a short reply the reader must get
	// before the sender goes on (a query's answer).
	const rounds = 20
	replies := make(chan int)
	go func() {
		s, err := ln.Accept()
		if err != nil {
			return
		}
		defer s.Close()
		for r := range rounds {
			for range rng.IntN(200) {
				p := make([]byte, 8192)
				for i := range p {
					p[i] = byte(rng.Uint32()) | 0x80 // never the tail's 'Z'
				}
				sent.Write(p)
				if _, err := s.Write(p); err != nil {
					return
				}
				if rng.IntN(50) == 0 {
					time.Sleep(3 * lowWaterWait)
				}
			}
			tail := []byte{byte(r), 'Z'}
			sent.Write(tail)
			if _, err := s.Write(tail); err != nil {
				return
			}
			if _, ok := <-replies; !ok {
				return
			}
		}
	}()
	var d net.Dialer
	c, err := batchedDial(d.DialContext)(ctx, "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, ok := c.(*batchedConn); !ok {
		t.Fatalf("batchedDial returned a %T", c)
	}
	var got bytes.Buffer
	buf := make([]byte, readBuffer)
	for r := range rounds {
		// Read until this round's tail arrived: it must, without the
		// sender writing anything more.
		for {
			if err := c.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
				t.Fatal(err)
			}
			n, err := c.Read(buf)
			got.Write(buf[:n])
			if err != nil {
				t.Fatalf("round %d: %v after %d bytes", r, err, got.Len())
			}
			if b := got.Bytes(); len(b) >= 2 && b[len(b)-1] == 'Z' && b[len(b)-2] == byte(r) {
				break
			}
		}
		replies <- r
	}
	close(replies)
	n, err := c.Read(buf)
	if n != 0 || err != io.EOF {
		t.Fatalf("after the last round: %d bytes, %v; want EOF", n, err)
	}
	if !bytes.Equal(got.Bytes(), sent.Bytes()) {
		t.Fatalf("read %d bytes, sent %d: they differ", got.Len(), sent.Len())
	}
}
