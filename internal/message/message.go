// Package message is the contract between planner and loader: one message
// names one (table, date). It knows no SQL; a decoded message has been
// checked for shape only, and the loader checks the table against its
// configuration before anything else.
package message

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"time"
)

// ErrInvalid marks a message that can never be processed. It is permanent:
// the loader logs it and acks it.
var ErrInvalid = errors.New("invalid message")

// Message asks for one date of one table to be synced.
type Message struct {
	Table string `json:"table"`
	Date  string `json:"date"` // YYYY-MM-DD, a UTC day
}

var tableRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,299}$`)

// MaxSize bounds a message; real ones are under 100 bytes.
const MaxSize = 4096

// New builds the message for table and day.
func New(table string, day time.Time) Message {
	return Message{Table: table, Date: day.UTC().Format(time.DateOnly)}
}

// Encode returns the message's JSON.
func (m Message) Encode() []byte {
	b, _ := json.Marshal(m)
	return b
}

// Decode parses and checks data. Unknown fields are rejected so that a
// message from a different producer is not half-understood.
func Decode(data []byte) (Message, time.Time, error) {
	if len(data) > MaxSize {
		return Message{}, time.Time{}, fmt.Errorf("%w: %d bytes, more than %d", ErrInvalid, len(data), MaxSize)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var m Message
	if err := dec.Decode(&m); err != nil {
		return Message{}, time.Time{}, fmt.Errorf("%w: not a JSON object with table and date: %v", ErrInvalid, err)
	}
	if dec.More() {
		return Message{}, time.Time{}, fmt.Errorf("%w: trailing data after the JSON object", ErrInvalid)
	}
	if !tableRE.MatchString(m.Table) {
		return Message{}, time.Time{}, fmt.Errorf("%w: table %q is not a table name", ErrInvalid, m.Table)
	}
	day, err := time.Parse(time.DateOnly, m.Date)
	if err != nil {
		return Message{}, time.Time{}, fmt.Errorf("%w: date %q is not a date (YYYY-MM-DD)", ErrInvalid, m.Date)
	}
	if day.Year() < 1 || day.Year() > 9999 {
		return Message{}, time.Time{}, fmt.Errorf("%w: date %q is out of range", ErrInvalid, m.Date)
	}
	return m, day, nil
}
