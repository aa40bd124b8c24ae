package web

import (
	"net/http"
	"time"

	"passgate/store"
	"passgate/web/view"
)

// handleHome shows the appliance's state and the latest checks. The scan
// log holds no personal data, so neither does this page.
func (s *Server) handleHome(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	d, err := s.db.District(ctx)
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	now := time.Now()
	midnight := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, now.Location())
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
	m := view.Home{
		District: d.Name, DistrictID: d.ID, Version: Version,
		Uptime: now.Sub(s.started), AllowToday: allow, DenyToday: deny,
		ListsAge: now.Sub(s.checker.ListsLoadedAt()),
	}
	for _, sc := range scans {
		m.Recent = append(m.Recent, view.HomeScan{At: sc.At.Local(), Source: sc.Source, Decision: sc.Decision, Reason: sc.Reason, Repeat: sc.Repeat})
	}
	s.render(w, r, http.StatusOK, view.HomePage(s.page(r, "nav.status"), m))
}
