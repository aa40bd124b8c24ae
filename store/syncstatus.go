package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// SyncStatus is an enrolled appliance's link to its hub, for the gate
// screen, the status page, /readyz and /metrics.
type SyncStatus struct {
	Enrolled   bool   // false: standalone appliance or hub; the rest is zero
	Hub        string // the hub's URL
	Appliance  string // this appliance's name at the hub
	EnrolledAt time.Time
	// LastPush and LastPull are the last successful exchanges with the
	// hub, by network or bundle; LastPull is the age of the lists, to
	// the millisecond of the last pull this process made even when the
	// file has not recorded it yet.
	LastPush    time.Time
	LastPull    time.Time
	LastError   string
	LastErrorAt time.Time
	// ScansWaiting and EventsWaiting are the records the hub has not
	// acknowledged yet.
	ScansWaiting  int64
	EventsWaiting int64
	// HistoryChangedAt is when the hub's history last changed under this
	// appliance (a hub restored from a backup): the whole feed was read
	// again then. Zero: never.
	HistoryChangedAt time.Time
}

// SyncStatus reads the appliance's sync state. Cheap: a handful of
// single-row lookups, no scan of the log.
func (db *DB) SyncStatus(ctx context.Context) (*SyncStatus, error) {
	st := &SyncStatus{}
	err := db.view(ctx, func(tx *sql.Tx) error {
		var enrolled int64
		err := tx.QueryRowContext(ctx, `SELECT url, appliance, enrolled_ms FROM sync_hub WHERE id = 1`).Scan(&st.Hub, &st.Appliance, &enrolled)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		st.Enrolled, st.EnrolledAt = true, time.UnixMilli(enrolled)
		var (
			scansAcked, eventsAcked    int64
			push, pull, errAt, changed sql.NullInt64
		)
		err = tx.QueryRowContext(ctx, `SELECT scans_acked, events_acked, last_push_ms, last_pull_ms, last_error, last_error_ms,
			history_changed_ms FROM sync_state WHERE id = 1`).Scan(&scansAcked, &eventsAcked, &push, &pull, &st.LastError, &errAt, &changed)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		st.LastPush, st.LastPull, st.LastErrorAt = timeOrZero(push), timeOrZero(pull), timeOrZero(errAt)
		st.HistoryChangedAt = timeOrZero(changed)
		if mem := db.lastPull.Load(); mem > pull.Int64 {
			st.LastPull = time.UnixMilli(mem)
		}
		// max(id) is answered from the end of the rowid b-tree.
		var maxScan sql.NullInt64
		if err := tx.QueryRowContext(ctx, `SELECT max(id) FROM scans`).Scan(&maxScan); err != nil {
			return err
		}
		st.ScansWaiting = max(0, maxScan.Int64-scansAcked)
		// Outbox ids are consecutive too and no row the hub has not
		// acknowledged is deleted (see backlogAfter).
		var maxEvent sql.NullInt64
		if err := tx.QueryRowContext(ctx, `SELECT max(seq) FROM outbox`).Scan(&maxEvent); err != nil {
			return err
		}
		st.EventsWaiting = max(0, maxEvent.Int64-eventsAcked)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sync status: %w", err)
	}
	return st, nil
}

// ApplianceStatus is what a hub knows of one appliance enrolled with it.
type ApplianceStatus struct {
	Name        string
	Role        ApplianceRole
	Created     time.Time
	Enrolled    time.Time // zero: the enrolment code is not used yet
	Retired     time.Time // zero: active
	Draining    time.Time // zero: not draining
	LastContact time.Time // zero: never pushed or pulled
	// ClockSkew is the appliance's clock minus the hub's at last contact.
	ClockSkew time.Duration
	// Backlog is the records it reported still waiting to be sent.
	Backlog int64
	// RevocationsBehind is how many of the hub's revocations it had not
	// applied at last contact.
	RevocationsBehind int64
	// EnrolledFrom and IssuerFingerprint: see Appliance.
	EnrolledFrom      string
	IssuerFingerprint []byte
}

// State is where the appliance stands: "pending" (its enrolment code is
// not used yet), "active", "draining" (about to be retired) or
// "retired".
func (a *ApplianceStatus) State() string {
	switch {
	case !a.Retired.IsZero():
		return "retired"
	case a.Enrolled.IsZero():
		return "pending"
	case !a.Draining.IsZero():
		return "draining"
	}
	return "active"
}

// ApplianceStatuses lists the appliances of this hub, by name.
func (db *DB) ApplianceStatuses(ctx context.Context) ([]*ApplianceStatus, error) {
	var list []*ApplianceStatus
	err := db.view(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT a.name, a.may_issue, a.created_ms, a.enrolled_ms, a.retired_ms,
				a.last_contact_ms, a.clock_skew_ms, a.backlog, a.revocations_seq, coalesce(a.enrolled_from, ''), a.issuer_fpr,
				(SELECT count(*) FROM revocations r WHERE r.seq > a.revocations_seq), a.draining_ms
			FROM appliances a ORDER BY a.name`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			a := &ApplianceStatus{}
			var (
				created                         int64
				enrolled, retired, contact, drn sql.NullInt64
				skew, backlog, revSeq, mayIssue int64
				behind                          int64 // counted: revocation numbers jump (numberRevocationsOnOpen)
			)
			if err := rows.Scan(&a.Name, &mayIssue, &created, &enrolled, &retired, &contact, &skew, &backlog, &revSeq,
				&a.EnrolledFrom, &a.IssuerFingerprint, &behind, &drn); err != nil {
				return err
			}
			a.Role = RoleOf(mayIssue == 1)
			a.Created = time.UnixMilli(created)
			a.Enrolled, a.Retired, a.LastContact = timeOrZero(enrolled), timeOrZero(retired), timeOrZero(contact)
			a.Draining = timeOrZero(drn)
			a.ClockSkew = time.Duration(skew) * time.Millisecond
			a.Backlog = backlog
			a.RevocationsBehind = behind
			list = append(list, a)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("appliances: %w", err)
	}
	return list, nil
}
