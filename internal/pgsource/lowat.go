package pgsource

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"golang.org/x/sys/unix"
)

// PostgreSQL sends a result 8 KB at a time (its send buffer), and a reader
// faster than the server is woken for each of those: a system call, a
// scheduler round trip and a context switch every 8 KB, which cost about
// as much CPU as decoding the rows. While a result streams, batchedConn
// asks the kernel (SO_RCVLOWAT) to wake the reader only once lowWater
// bytes are waiting, and waits for them at most lowWaterWait; a read that
// finds less than that, or a wait that ends on the timeout, goes back to
// waking on every byte, so a short reply is never held back.
type batchedConn struct {
	net.Conn
	raw       syscall.RawConn
	streaming bool
}

const (
	lowWater     = 64 << 10
	streamRead   = 8 << 10 // a read this large (PostgreSQL's whole send buffer): a result is streaming
	lowWaterWait = time.Millisecond
)

// batchedDial wraps dial's TCP or Unix socket connections in a
// batchedConn.
func batchedDial(dial pgconn.DialFunc) pgconn.DialFunc {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		sc, ok := c.(syscall.Conn)
		if !ok {
			return c, nil
		}
		raw, err := sc.SyscallConn()
		if err != nil {
			return c, nil
		}
		return &batchedConn{Conn: c, raw: raw}, nil
	}
}

func (c *batchedConn) setLowWater(n int) {
	_ = c.raw.Control(func(fd uintptr) {
		_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVLOWAT, n)
	})
}

func (c *batchedConn) Read(p []byte) (int, error) {
	if !c.streaming || len(p) < lowWater {
		if c.streaming {
			// A small read waits on the runtime's poller, which must
			// wake on every byte.
			c.streaming = false
			c.setLowWater(1)
		}
		n, err := c.Conn.Read(p)
		if n >= streamRead && len(p) >= lowWater {
			c.streaming = true
			c.setLowWater(lowWater)
		}
		return n, err
	}
	var n int
	var rerr error
	err := c.raw.Read(func(fd uintptr) bool {
		waited := false
		for {
			n, rerr = unix.Read(int(fd), p)
			switch {
			case errors.Is(rerr, unix.EINTR):
				continue
			case !errors.Is(rerr, unix.EAGAIN):
				return true
			case waited:
				// Fewer than lowWater bytes came within the wait: the
				// result ended or slowed. Wake on every byte again, and
				// let the runtime's poller wait if nothing is there.
				c.streaming = false
				_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVLOWAT, 1)
				n, rerr = unix.Read(int(fd), p)
				return !errors.Is(rerr, unix.EAGAIN)
			}
			fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
			ts := unix.NsecToTimespec(int64(lowWaterWait))
			_, _ = unix.Ppoll(fds, &ts, nil)
			waited = true
		}
	})
	if err != nil {
		return 0, err
	}
	if rerr != nil {
		c.streaming = false
		return 0, &net.OpError{Op: "read", Net: c.LocalAddr().Network(), Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: rerr}
	}
	if n == 0 && len(p) > 0 {
		return 0, io.EOF
	}
	if n < streamRead {
		c.streaming = false
		c.setLowWater(1)
	}
	return n, nil
}
