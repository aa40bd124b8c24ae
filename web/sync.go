package web

import (
	"context"
	"encoding/hex"
	"time"

	"passgate/store"
	"passgate/web/i18n"
	"passgate/web/view"
)

// listsState is how current the appliance's trust and revocation lists
// are. A standalone appliance or a hub makes its own lists: their age is
// the checker's last reload. An enrolled appliance gets them from its
// hub: their age is the last successful pull (network or bundle).
type listsState struct {
	Age   time.Duration
	Stale bool
	Never bool // enrolled, never pulled since enrolment
	// StaleAfter is the policy's threshold for an enrolled appliance.
	StaleAfter time.Duration
	Sync       *store.SyncStatus // nil when the state could not be read
	Enrolled   bool
}

func (s *Server) listsState(ctx context.Context, now time.Time) listsState {
	st := listsState{Age: now.Sub(s.checker.ListsLoadedAt())}
	st.Stale = st.Age > listsStaleAfter
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	sync, err := s.db.SyncStatus(ctx)
	if err != nil {
		s.log.Warn("sync status", "err", err)
		return st
	}
	st.Sync = sync
	if !sync.Enrolled {
		return st
	}
	st.Enrolled = true
	if sync.LastPull.IsZero() {
		st.Never, st.Stale = true, true
		return st
	}
	// The policy's threshold: the appliance keeps checking with old
	// lists, and the screen says how old, so staff can tell an admin
	// (a revocation made at the hub meanwhile is not applied here).
	st.Age = max(st.Age, now.Sub(sync.LastPull))
	st.StaleAfter = s.checker.Policy().StaleAfter
	if st.StaleAfter <= 0 {
		st.StaleAfter = store.DefaultStaleAfter
	}
	st.Stale = st.Age > st.StaleAfter
	return st
}

// banner is the gate's prominent warning of stale lists, Chinese then
// English; empty while they are fresh.
func (l listsState) banner() string {
	if !l.Stale {
		return ""
	}
	zh, en := i18n.Printer{Lang: i18n.ZH}, i18n.Printer{Lang: i18n.EN}
	if l.Never {
		return zh.T("sync.never") + " / " + en.T("sync.never")
	}
	key, n := "gate.lists_old", int(l.Age/time.Minute)
	if l.Age < time.Minute {
		key, n = "gate.lists_old_s", int(l.Age/time.Second)
	}
	return zh.T(key, n) + " / " + en.T(key, n)
}

// waiting is the number of records not yet acknowledged by the hub.
func (l listsState) waiting() int64 {
	if l.Sync == nil {
		return 0
	}
	return l.Sync.ScansWaiting + l.Sync.EventsWaiting
}

// applianceRows is the hub's view of the appliances enrolled with it.
// An appliance's clock is flagged when it is further off than the check
// policy tolerates: its passes and scans carry that clock's times.
func (s *Server) applianceRows(ctx context.Context) ([]view.ApplianceRow, error) {
	list, err := s.db.ApplianceStatuses(ctx)
	if err != nil || len(list) == 0 {
		return nil, err
	}
	pol, err := s.db.Policy(ctx)
	if err != nil {
		return nil, err
	}
	rows := make([]view.ApplianceRow, 0, len(list))
	for _, a := range list {
		rows = append(rows, view.ApplianceRow{
			Name: a.Name, Role: string(a.Role), State: a.State(), LastContact: a.LastContact,
			Backlog: a.Backlog, Skew: a.ClockSkew, SkewFlag: skewFlagged(a.ClockSkew, pol.ClockSkew), Behind: a.RevocationsBehind,
			From: a.EnrolledFrom, IssuerSHA256: hex.EncodeToString(a.IssuerFingerprint),
		})
	}
	return rows, nil
}

// skewFlagged reports whether a clock offset is beyond the tolerance.
func skewFlagged(skew, tolerance time.Duration) bool {
	return skew > tolerance || -skew > tolerance
}
