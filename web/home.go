package web

import (
	"context"
	"errors"
	"io/fs"
	"net/http"
	"os"
	"sync"
	"time"

	"passgate/store"
	"passgate/web/view"
)

// handleHome sends a logged-in user to the page of their job: gate staff
// to the gate, issuers to the desk, admins to the admin overview. Anonymous
// visitors never get here: the guard sends them to the login page.
func (s *Server) handleHome(w http.ResponseWriter, r *http.Request) {
	var role store.UserRole
	if u := userFrom(r.Context()); u != nil {
		role = u.Role
	}
	http.Redirect(w, r, s.landingFor(r.Context(), role, ""), http.StatusSeeOther)
}

// landingFor is landing on this appliance: a gate has no desk
// (routeTable), so its issuers land where staff do.
func (s *Server) landingFor(ctx context.Context, role store.UserRole, next string) string {
	if role == store.UserIssuer {
		if gate, err := s.db.IsGate(ctx); err == nil && gate {
			role = store.UserStaff
		}
	}
	return landing(role, next)
}

// landing is where a user of role goes: next, a destination already
// checked by safeNext, unless it is a page the role may not open; else the
// page of their job. Without a role (the language switch of an anonymous
// visitor) it is the site's root, which sends a logged-in user on in turn.
func landing(role store.UserRole, next string) string {
	if next != defaultNext && (role == "" || mayOpen(role, next)) {
		return next
	}
	switch role {
	case store.UserAdmin:
		return "/admin"
	case store.UserIssuer:
		return "/desk"
	case store.UserStaff:
		return "/gate"
	}
	return "/"
}

// handleStatus shows the appliance's state and the latest checks. The scan
// log holds no personal data, so neither does this page.
func (s *Server) handleStatus(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	d, err := s.db.District(ctx)
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	// Today is the district's day, whatever zone the server runs in.
	loc := s.zone(ctx)
	now := time.Now().In(loc)
	midnight := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, loc)
	allow, deny, err := s.db.ScanStats(ctx, midnight)
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	scans, err := s.db.FindScans(ctx, store.ScanFilter{Limit: 20})
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	size, err := dbSize(s.db.Path())
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	m := view.Status{
		District: d.Name, DistrictID: d.ID, Version: s.version,
		Uptime: now.Sub(s.started), DBSize: size, Roots: s.checker.Roots(),
		AllowToday: allow, DenyToday: deny, AuditWarnings: s.db.AuditWarnings(ctx),
	}
	for _, in := range s.inputs.List() {
		m.Inputs = append(m.Inputs, view.InputRow{
			Name: in.Name, Kind: in.Kind, Path: in.Path, Connected: in.Connected,
			LastRead: in.LastRead, Reads: in.Reads, Errors: in.Errors, LastError: in.LastError,
			Unterminated: in.Unterminated,
		})
	}
	ls := s.listsState(ctx, now)
	m.ListsAge = ls.Age
	if ls.Enrolled {
		st := ls.Sync
		m.Sync = &view.SyncView{
			Hub: st.Hub, Appliance: st.Appliance, LastPush: st.LastPush, LastPull: st.LastPull,
			LastError: st.LastError, LastErrorAt: st.LastErrorAt, Waiting: ls.waiting(), Stale: ls.Stale,
			HistoryChangedAt: st.HistoryChangedAt,
		}
		bl := s.backlogState(ctx, now)
		m.Sync.OldestWaiting, m.Sync.BacklogWarn, m.Sync.BacklogLate = bl.Age, bl.Warn, bl.Late
	}
	if m.Appliances, err = s.applianceRows(ctx); err != nil {
		s.internalError(w, r, err)
		return
	}
	for _, sc := range scans {
		m.Recent = append(m.Recent, view.StatusScan{At: sc.At.In(loc), Source: sc.Source, Decision: sc.Decision, Reason: sc.Reason, Repeat: sc.Repeat})
	}
	s.render(w, r, http.StatusOK, view.StatusPage(s.adminPage(r, "admin.status"), m))
}

// dbSize is the space the database takes: the main file plus its
// write-ahead log, which between checkpoints can hold much of the data.
// The shared-memory index (-shm) is not data and is left out.
func dbSize(path string) (int64, error) {
	var total int64
	for _, p := range []string{path, path + "-wal"} {
		fi, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue // no WAL right after a checkpoint on close
		}
		if err != nil {
			return 0, err
		}
		total += fi.Size()
	}
	return total, nil
}

// pageAccess finds the access level of a GET of a path, from the route
// table; built once, as the table never changes while running. (Set in
// init: the route table's handlers lead back here.)
var pageAccess func() func(path string) (Access, bool)

func init() { pageAccess = sync.OnceValue(routeAccess) }

func routeAccess() func(path string) (Access, bool) {
	mux := http.NewServeMux()
	access := map[string]Access{}
	for _, rt := range (&Server{}).routeTable() {
		mux.Handle(rt.pattern, http.NotFoundHandler())
		access[rt.pattern] = rt.access
	}
	return func(path string) (Access, bool) {
		r, err := http.NewRequest(http.MethodGet, path, nil)
		if err != nil {
			return 0, false
		}
		_, pattern := mux.Handler(r)
		a, ok := access[pattern]
		return a, ok
	}
}

// mayOpen reports whether a user of role may open the page at path (a
// path that is no page at all is left for the page to answer).
func mayOpen(role store.UserRole, path string) bool {
	a, ok := pageAccess()(path)
	return !ok || a == Public || allowed(a, role)
}
