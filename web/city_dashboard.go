package web

import (
	"net/http"
	"strconv"
	"time"

	"passgate/assets"
	"passgate/citystats"
	"passgate/store"
	"passgate/web/i18n"
	"passgate/web/view"
)

// handleCityDashboard asks every district hub for its figures and shows
// them in one table, the districts that did not answer named with why.
// The page refreshes itself (dashboard.js fetches it again).
func (s *Server) handleCityDashboard(w http.ResponseWriter, r *http.Request) {
	t := i18n.FromRequest(r)
	p := s.adminPage(r, "city.dash")
	p.JS = append(p.JS, assets.Path("/assets/", "dashboard.js"))
	m := view.CityDashboard{Joined: s.city != nil && s.city.Conn != nil, RefreshMS: s.dashRefresh.Milliseconds()}
	if !m.Joined {
		s.render(w, r, http.StatusOK, view.CityDashboardPage(p, m))
		return
	}
	m.Districts = len(s.city.Districts)
	timeout := s.city.Timeout
	if timeout <= 0 {
		timeout = cityTimeout
	}
	res, err := citystats.AskDistricts(r.Context(), s.city.Conn, s.city.Districts, string(actorOf(r)), timeout)
	if err != nil {
		s.log.Error("city dashboard", "err", err)
		m.Error = t.T("city.trace.err.unavailable")
		s.render(w, r, http.StatusServiceUnavailable, view.CityDashboardPage(p, m))
		return
	}
	loc := p.Zone
	m.At = res.At.In(loc).Format("2006-01-02 15:04:05")
	var total citystats.Answer
	for _, a := range res.Answers {
		m.Rows = append(m.Rows, cityDashRow(t, loc, a))
		total.Scans5m += a.Scans5m
		total.ScansHour += a.ScansHour
		total.ScansToday += a.ScansToday
		total.Allows += a.Allows
		total.Denies += a.Denies
		total.Appliances += a.Appliances
		total.AppliancesSeen += a.AppliancesSeen
		total.Revocations += a.Revocations
	}
	m.Total = view.CityDashRow{District: t.T("city.dash.total"), Scans5m: fmtCount(total.Scans5m), ScansHour: fmtCount(total.ScansHour),
		ScansToday: fmtCount(total.ScansToday), Allows: fmtCount(total.Allows), Denies: fmtCount(total.Denies),
		Appliances: t.T("city.dash.seen_of", total.AppliancesSeen, total.Appliances)}
	for _, x := range res.Missing {
		m.Missing = append(m.Missing, view.CityTraceMissing{District: x.District, Why: x.Why})
	}
	s.render(w, r, http.StatusOK, view.CityDashboardPage(p, m))
}

// cityDashRow is one district's figures as the table shows them.
func cityDashRow(t i18n.Printer, loc *time.Location, a *citystats.Answer) view.CityDashRow {
	row := view.CityDashRow{District: a.District, Scans5m: fmtCount(a.Scans5m), ScansHour: fmtCount(a.ScansHour), ScansToday: fmtCount(a.ScansToday),
		Allows: fmtCount(a.Allows), Denies: fmtCount(a.Denies), Appliances: t.T("city.dash.seen_of", a.AppliancesSeen, a.Appliances),
		OldestList: "—", MedianList: "—", Revocations: fmtCount(a.Revocations), CityLag: "—",
		HubTime: time.UnixMilli(a.AtMS).In(loc).Format("15:04:05")}
	if a.OldestListS != nil {
		oldest := time.Duration(*a.OldestListS) * time.Second
		row.OldestList, row.MedianList = fmtAge(t, oldest), fmtAge(t, time.Duration(*a.MedianListS)*time.Second)
		// Past the age at which an appliance warns its own staff (by
		// default): it is off or cut off, and checks with what it had.
		row.Stale = oldest > store.DefaultStaleAfter
	}
	if a.CityLag != nil {
		row.CityLag = fmtCount(*a.CityLag)
	}
	return row
}

// fmtCount is a count as the city dashboard shows it.
func fmtCount(n int64) string { return strconv.FormatInt(n, 10) }
