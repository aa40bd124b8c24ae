package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"passgate/store"
)

func (s *Server) handleLivez(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok\n"))
}

// historyWarnFor is how long /readyz warns that the hub's history
// changed (a hub restored from a backup) and the feed was read again.
const historyWarnFor = time.Hour

// cityWarnAfter is how long a revocation may wait for the city stream
// before /readyz warns: a working link publishes within a second.
const cityWarnAfter = time.Minute

// handleReadyz answers 200 when the appliance can check and log: the
// scan log takes a real write (store.ProbeWrite, at most one every two
// seconds however often this is polled) and trust anchors are loaded.
func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	checks := map[string]string{"database": "ok", "keys": "ok"}
	status := http.StatusOK
	if err := s.db.ProbeWrite(ctx); err != nil {
		s.log.Warn("readiness: scan log", "err", err)
		// The reason, not the error: this answer is public.
		checks["database"] = "not writable: the scan log cannot take a write"
		if errors.Is(err, store.ErrNoSpace) {
			checks["database"] = "not writable: no space for the scan log (disk or database full)"
		}
		status = http.StatusServiceUnavailable
	}
	if s.checker.Roots() == 0 {
		checks["keys"] = "no trusted root key loaded"
		status = http.StatusServiceUnavailable
	}
	// A disconnected scanner is a warning, not unreadiness: the other
	// inputs and the scan API still check.
	warnings := []string{}
	inputs := []map[string]any{}
	for _, in := range s.inputs.List() {
		row := map[string]any{"name": in.Name, "kind": in.Kind, "connected": in.Connected, "reads": in.Reads, "errors": in.Errors}
		if !in.LastRead.IsZero() {
			row["last_read"] = in.LastRead.UTC()
		}
		if in.LastError != "" {
			row["last_error"] = in.LastError
		}
		if in.Unterminated > 0 {
			row["unterminated_keys"] = in.Unterminated
			row["last_unterminated"] = in.LastUnterminated.UTC()
		}
		inputs = append(inputs, row)
		if !in.Connected {
			warnings = append(warnings, "input "+in.Name+" is not connected")
		}
		if in.Unterminated > 0 {
			warnings = append(warnings, fmt.Sprintf("input %s received %d keys without a line end: set the scanner's suffix to Enter", in.Name, in.Unterminated))
		}
	}
	// An appliance cut off from its hub keeps checking with the lists it
	// has: old lists and a backlog are warnings, not unreadiness.
	ls := s.listsState(ctx, time.Now())
	var sync map[string]any
	if ls.Enrolled {
		st := ls.Sync
		sync = map[string]any{
			"hub": st.Hub, "appliance": st.Appliance,
			"scans_waiting": st.ScansWaiting, "events_waiting": st.EventsWaiting,
			"lists_age_seconds": int64(ls.Age / time.Second), "lists_stale": ls.Stale,
			"lists_stale_after_seconds": int64(ls.StaleAfter / time.Second),
		}
		if !st.LastPush.IsZero() {
			sync["last_push"] = st.LastPush.UTC()
		}
		if !st.LastPull.IsZero() {
			sync["last_pull"] = st.LastPull.UTC()
		}
		if st.LastError != "" {
			sync["last_error"] = st.LastError
		}
		if bl := s.backlogState(ctx, time.Now()); bl.Age > 0 {
			sync["oldest_waiting_seconds"], sync["backlog_late"] = int64(bl.Age/time.Second), bl.Late
			if bl.Late {
				warnings = append(warnings, fmt.Sprintf("the oldest record waiting for the district hub is %s old (warning after %s): check the uplink",
					bl.Age.Round(time.Second), bl.Warn))
			}
		}
		if !st.HistoryChangedAt.IsZero() {
			sync["history_changed"] = st.HistoryChangedAt.UTC()
			if time.Since(st.HistoryChangedAt) < historyWarnFor {
				warnings = append(warnings, "hub history changed at "+st.HistoryChangedAt.UTC().Format(time.RFC3339)+"; re-read the feed")
			}
		}
		switch {
		case ls.Never:
			warnings = append(warnings, "lists not yet received from the district hub")
		case ls.Stale:
			warnings = append(warnings, "lists from the district hub are "+ls.Age.Round(time.Second).String()+" old")
		}
	}
	// A hub linked to the city: revocations of this district waiting for
	// the city stream are a warning, never unreadiness (gates check on).
	var city map[string]any
	if cs, err := s.db.CityLinkState(ctx); err != nil {
		s.log.Warn("readiness: city link", "err", err)
	} else if cs.Linked {
		city = map[string]any{"published_seq": cs.PublishedSeq, "waiting": cs.Pending,
			"stream_position": cs.ConsumedSeq, "taken": cs.Taken}
		if !cs.Published.IsZero() {
			city["last_publish"] = cs.Published.UTC()
		}
		if !cs.Consumed.IsZero() {
			city["last_consume"] = cs.Consumed.UTC()
		}
		if !cs.OldestPending.IsZero() && time.Since(cs.OldestPending) > cityWarnAfter {
			warnings = append(warnings, fmt.Sprintf("%d revocations of this district not yet in the city stream, the oldest %s old: check the city link",
				cs.Pending, time.Since(cs.OldestPending).Round(time.Second)))
		}
	}
	// A broken or rolled-back audit trail does not stop checking: it is
	// a warning a monitor must raise, loudly, not unreadiness.
	checks["audit"] = "ok"
	if aw := s.db.AuditWarnings(ctx); len(aw) > 0 {
		checks["audit"] = "warning"
		warnings = append(warnings, aw...)
	}
	body := map[string]any{
		"sync":            sync,
		"city":            city,
		"status":          map[bool]string{true: "ok", false: "unavailable"}[status == http.StatusOK],
		"checks":          checks,
		"lists_loaded_at": s.checker.ListsLoadedAt().UTC(),
		"inputs":          inputs,
		"warnings":        warnings,
	}
	writeJSON(w, status, body)
}
