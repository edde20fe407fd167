package loader

import (
	"sync"
	"sync/atomic"
)

// probes holds what tests attached to each Syncer; the production struct
// carries none of it (see seams in syncer.go).
var probes sync.Map // *Syncer → *probe

type probe struct {
	hook     atomic.Pointer[func(point string) error]
	noLease  atomic.Bool
	noDirect atomic.Bool
	loaded   atomic.Int64
}

func probeOf(s *Syncer) *probe {
	p, _ := probes.LoadOrStore(s, new(probe))
	return p.(*probe)
}

func init() {
	seams.hook = func(s *Syncer, point string) error {
		if f := probeOf(s).hook.Load(); f != nil {
			return (*f)(point)
		}
		return nil
	}
	seams.noLease = func(s *Syncer) bool { return probeOf(s).noLease.Load() }
	seams.noDirect = func(s *Syncer) bool { return probeOf(s).noDirect.Load() }
	seams.loaded = func(s *Syncer, rows int) { probeOf(s).loaded.Add(int64(rows)) }
}

// setHook makes f run at each named point of s's loop; nil removes it.
func setHook(s *Syncer, f func(point string) error) {
	if f == nil {
		probeOf(s).hook.Store(nil)
		return
	}
	probeOf(s).hook.Store(&f)
}

// setNoLease makes s sync without taking the date's lease.
func setNoLease(s *Syncer, on bool) { probeOf(s).noLease.Store(on) }

// setNoDirect makes s publish every day from staging, never by load.
func setNoDirect(s *Syncer, on bool) { probeOf(s).noDirect.Store(on) }

// rowsLoaded is how many rows s has appended to staging so far.
func rowsLoaded(s *Syncer) int64 { return probeOf(s).loaded.Load() }
