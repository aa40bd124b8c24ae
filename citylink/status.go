package citylink

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"passgate/cityask"
	"passgate/pass"
	"passgate/store"
)

// statusVersion is the version of a city-wide status change message.
const statusVersion = 1

// MaxStatusMessage bounds a status change message: a reason of at most
// 500 bytes (Chinese is three a character) and a few short fields.
const MaxStatusMessage = 1024

// wireStatus is a city-wide status change on StatusSubject: JSON, one
// object, every field named. It carries the person's city subject,
// never an ID number or a name.
type wireStatus struct {
	V       int    `json:"v"`
	ID      string `json:"id"`    // random, 32 hex; also the Nats-Msg-Id
	Asker   string `json:"asker"` // the city officer, as the console's audit trail names them
	Subject string `json:"subject"`
	Color   string `json:"color"`
	Reason  string `json:"reason"`
	AtMS    int64  `json:"at_ms"`
}

// EncodeStatus is the message of the city-wide status change c.
func EncodeStatus(c *store.CityStatus) ([]byte, error) {
	b, err := json.Marshal(&wireStatus{V: statusVersion, ID: c.ID, Asker: c.Asker, Subject: hex.EncodeToString(c.Subject[:]),
		Color: c.Color.String(), Reason: c.Reason, AtMS: c.At.UnixMilli()})
	if err != nil {
		return nil, fmt.Errorf("encode city status change: %w", err)
	}
	if _, err := ParseStatus(b); err != nil {
		return nil, fmt.Errorf("encode city status change: %w", err)
	}
	return b, nil
}

// ParseStatus reads a status change message: at most MaxStatusMessage
// bytes, one JSON object of exactly the fields of version 1, an id and
// an asker as the console makes them, a non-zero subject in lower-case
// hex, a colour, a reason that is clean text of at most 500 bytes, a
// positive time.
func ParseStatus(data []byte) (*store.CityStatus, error) {
	var w wireStatus
	if err := cityask.DecodeStrict(data, MaxStatusMessage, &w); err != nil {
		return nil, fmt.Errorf("parse city status change: %w", err)
	}
	bad := func(why string) (*store.CityStatus, error) {
		return nil, errors.New("parse city status change: " + why)
	}
	c := &store.CityStatus{ID: w.ID, Asker: w.Asker, Reason: w.Reason, At: time.UnixMilli(w.AtMS)}
	var err error
	switch {
	case w.V != statusVersion:
		return bad(fmt.Sprintf("version %d", w.V))
	case !cityask.ValidID(w.ID):
		return bad("id")
	case !cityask.ValidAsker(w.Asker):
		return bad("asker")
	case len(w.Subject) != 2*len(c.Subject) || hexDecode(c.Subject[:], w.Subject) != nil || c.Subject.IsZero() ||
		w.Subject != hex.EncodeToString(c.Subject[:]):
		return bad("subject is not lower-case hex of a pseudonym")
	case w.AtMS <= 0 || w.AtMS > 1<<50:
		return bad("time out of range")
	case w.Reason == "" || pass.CheckText("reason", w.Reason, 500) != nil:
		return bad("a reason that is not clean text of 1 to 500 bytes")
	}
	if c.Color, err = pass.ParseColor(w.Color); err != nil || c.Color.String() != w.Color {
		return bad("colour")
	}
	return c, nil
}

func hexDecode(dst []byte, s string) error {
	_, err := hex.Decode(dst, []byte(s))
	return err
}

// PublishStatus publishes the city-wide status change c to the city
// stream over nc (the console's connection: only its user may publish
// StatusSubject) and waits for the stream's acknowledgement: when it
// returns nil every hub will apply the change, whenever it next reads
// the stream. The change's id is the message id, so publishing it again
// (a retry after a lost acknowledgement) is dropped by the stream.
func PublishStatus(ctx context.Context, nc *nats.Conn, c *store.CityStatus) (uint64, error) {
	b, err := EncodeStatus(c)
	if err != nil {
		return 0, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return 0, fmt.Errorf("publish city status change: %w", err)
	}
	m := nats.NewMsg(StatusSubject)
	m.Data = b
	m.Header.Set(jetstream.MsgIDHeader, "status-"+c.ID)
	ack, err := js.PublishMsg(ctx, m)
	if err != nil {
		return 0, fmt.Errorf("publish city status change: %w", err)
	}
	return ack.Sequence, nil
}
