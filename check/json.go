package check

import (
	"strconv"
	"time"

	"passgate/internal/jsonappend"
)

// MarshalJSON renders the decision as the scan API documents it: the
// bytes of AppendJSON.
func (d *Decision) MarshalJSON() ([]byte, error) {
	return d.AppendJSON(make([]byte, 0, 512))
}

// AppendJSON appends the wire form of the decision, shared by the scan API
// and the CLI, to b. Fields that are unknown (the pass did not verify)
// are null; the source is left out when empty. It writes the bytes
// encoding/json would write for the struct in json_test.go, without its
// reflection and allocations: the scan API answers every scan with it.
func (d *Decision) AppendJSON(b []byte) ([]byte, error) {
	b = append(b, `{"decision":`...)
	b = jsonappend.String(b, string(d.Decision))
	b = append(b, `,"reason":`...)
	b = jsonappend.String(b, string(d.Reason))
	b = append(b, `,"repeat":`...)
	b = strconv.AppendBool(b, d.Repeat)
	var err error
	if d.Color.Valid() {
		b = append(b, `,"holder":{"name":`...)
		b = jsonappend.String(b, d.Name)
		b = append(b, `,"id_tail":`...)
		b = jsonappend.String(b, d.IDTail)
		b = append(b, `},"color":`...)
		b = jsonappend.String(b, d.Color.String())
		b = append(b, `,"kind":`...)
		b = jsonappend.String(b, d.Kind.String())
		b = append(b, `,"doses":`...)
		b = strconv.AppendInt(b, int64(d.Doses), 10)
		for _, f := range [...]struct {
			key string
			t   time.Time
		}{{`,"tested_at":`, d.TestedAt}, {`,"issued_at":`, d.IssuedAt}, {`,"expires_at":`, d.ExpiresAt}} {
			b = append(b, f.key...)
			if b, err = appendTimeOrNull(b, f.t); err != nil {
				return nil, err
			}
		}
	} else {
		b = append(b, `,"holder":null,"color":null,"kind":null,"doses":null,"tested_at":null,"issued_at":null,"expires_at":null`...)
	}
	if d.Source != "" {
		b = append(b, `,"source":`...)
		b = jsonappend.String(b, d.Source)
	}
	b = append(b, `,"checked_at":`...)
	if b, err = jsonappend.Time(b, d.At.UTC()); err != nil {
		return nil, err
	}
	b = append(b, `,"scan_id":`...)
	b = strconv.AppendInt(b, d.ScanID, 10)
	return append(b, '}'), nil
}

// appendTimeOrNull appends t in UTC, or null when it is unknown (zero).
func appendTimeOrNull(b []byte, t time.Time) ([]byte, error) {
	if t.IsZero() {
		return append(b, "null"...), nil
	}
	return jsonappend.Time(b, t.UTC())
}
