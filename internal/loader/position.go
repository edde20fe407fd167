package loader

import (
	"github.com/pgbq/pgbq/internal/schema"
	"github.com/pgbq/pgbq/internal/syncstate"
)

// A keyset position travels to sync_control and back: its timestamp as
// last_created_at, an integer key as last_id (beside last_max_id, as the
// original design defines them), any other key as its canonical text in
// last_key.

// lastKey is what sync_control's last_key holds for position k: nil for
// an integer key.
func lastKey(k schema.Key) *string {
	if k.Kind == schema.KeyInt {
		return nil
	}
	text := k.Text
	return &text
}

// checkpointKey is the position a checkpoint records for a table whose
// key is of kind; ok is false when it records none, or none that can be
// trusted (a last_key that is not the canonical text of such a key: then
// the day is read again from its start, which costs time, never rows).
func checkpointKey(e syncstate.Entry, kind schema.KeyKind) (schema.Key, bool) {
	if e.LastCreatedAt.IsZero() {
		return schema.Key{}, false
	}
	k := schema.Key{Time: e.LastCreatedAt.UTC(), Kind: kind}
	if kind == schema.KeyInt {
		k.ID = e.LastID
		return k, true
	}
	if e.LastKey == nil {
		return schema.Key{}, false
	}
	text, err := schema.CanonicalKey(kind, *e.LastKey)
	if err != nil {
		return schema.Key{}, false
	}
	k.Text = text
	return k, true
}
