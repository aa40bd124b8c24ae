package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"passgate/pass"
)

// statusRecords holds the status changes the audit trail describes,
// keyed by everything a status_changes row says, so that the table can
// be checked against the chain: the table is append-only by trigger
// only, and a row deleted and inserted again with another reason must
// not pass unseen.
type statusRecords map[string][]int64 // key → seqs of the records

// statusKey is one status change as both sides spell it.
func statusKey(subject, from, to, reason, actor string, atMS int64) string {
	return subject + "\x00" + from + "\x00" + to + "\x00" + reason + "\x00" + actor + "\x00" + strconv.FormatInt(atMS, 10)
}

// auditStatus is the detail of a status_changed record.
type auditStatus struct {
	From   string `json:"from"`
	To     string `json:"to"`
	Reason string `json:"reason"`
}

// add notes the status_changed record seq. A detail that does not
// parse is kept under a key no row has, so it shows as a missing row.
func (s statusRecords) add(seq, atMS int64, actor, subject, detail []byte) {
	var d auditStatus
	if err := json.Unmarshal(detail, &d); err != nil {
		d.Reason = "\x00unreadable"
	}
	k := statusKey(string(subject), d.From, d.To, d.Reason, string(actor), atMS)
	s[k] = append(s[k], seq)
}

// check matches every status_changes row at or after fromMS to one
// record, and reports the first row without a record or record
// without a row. A row up to exemptThrough without a record is let
// pass: retention removed its record.
func (s statusRecords) check(ctx context.Context, tx *sql.Tx, fromMS, exemptThrough int64) (int64, error) {
	rows, err := tx.QueryContext(ctx, `
		SELECT id, subject, from_color, to_color, reason, actor, at_ms
		FROM status_changes WHERE at_ms >= ? ORDER BY id`, fromMS)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	var n int64
	for rows.Next() {
		var id, to, at int64
		var from sql.NullInt64
		var subject []byte
		var reason, actor string
		if err := rows.Scan(&id, &subject, &from, &to, &reason, &actor, &at); err != nil {
			return n, &AuditError{Reason: fmt.Sprintf("status change unreadable: %v", err)}
		}
		f := ""
		if from.Valid {
			f = pass.Color(from.Int64).String()
		}
		k := statusKey(fmt.Sprintf("%x", subject), f, pass.Color(to).String(), reason, actor, at)
		seqs := s[k]
		if len(seqs) == 0 && id <= exemptThrough {
			continue
		}
		if len(seqs) == 0 {
			return n, &AuditError{Reason: fmt.Sprintf(
				"status change %d (%x to %s at %s, reason %q) has no audit record: inserted or replaced outside passgate",
				id, subject, pass.Color(to), time.UnixMilli(at).UTC().Format(time.RFC3339), reason)}
		}
		if len(seqs) == 1 {
			delete(s, k)
		} else {
			s[k] = seqs[1:]
		}
		n++
	}
	if err := rows.Err(); err != nil {
		return n, err
	}
	var first int64
	for _, seqs := range s {
		if first == 0 || seqs[0] < first {
			first = seqs[0]
		}
	}
	if first > 0 {
		return n, &AuditError{Seq: first, Reason: "the status change this record describes is missing from status_changes: deleted or replaced"}
	}
	return n, nil
}
