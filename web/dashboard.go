package web

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"passgate/assets"
	"passgate/store"
	"passgate/web/i18n"
	"passgate/web/view"
)

// Dashboard shape: ten-minute columns over the local day, the busiest
// places of the last hour, and how often an open page (this one, and the
// city console's) refreshes itself: the counts move in 5-minute buckets,
// and each refresh of the city's is a request to every hub.
const (
	dashBucket      = 10 * time.Minute
	dashPlacesSpan  = time.Hour
	dashPlacesLimit = 8
	dashSourceLimit = 12
	dashRefresh     = 30 * time.Second // unless Config.DashboardRefresh
)

// handleAdmin is the admin's landing page: today's dashboard, then one
// link per admin page.
func (s *Server) handleAdmin(w http.ResponseWriter, r *http.Request) {
	m, err := s.dashboard(r.Context(), i18n.FromRequest(r), s.db.Now())
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	m.City = s.city != nil
	p := s.adminPage(r, "admin.title")
	p.CSS = append(p.CSS, assets.Path("/assets/", "dashboard.css"))
	p.JS = append(p.JS, assets.Path("/assets/", "dashboard.js"))
	s.render(w, r, http.StatusOK, view.AdminHome(p, m))
}

// handleDashboardPanel answers the refresh of an open dashboard with the
// panel alone.
func (s *Server) handleDashboardPanel(w http.ResponseWriter, r *http.Request) {
	m, err := s.dashboard(r.Context(), i18n.FromRequest(r), s.db.Now())
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, view.DashboardPanel(s.page(r, "admin.title"), m))
}

// dashboard gathers today's picture at now: one query per chart, plus
// the hub's appliance registry.
func (s *Server) dashboard(ctx context.Context, t i18n.Printer, now time.Time) (view.Dashboard, error) {
	loc := s.zone(ctx)
	now = now.In(loc)
	day := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, loc)
	end := day.AddDate(0, 0, 1) // 23 or 25 hours on a DST change
	m := view.Dashboard{
		Day: day.Format("2006-01-02"), Updated: now.Format("15:04:05"), Zone: now.Format("MST -07:00"),
		RefreshMS: s.dashRefresh.Milliseconds(), RefreshText: t.T("dash.refresh", max(1, int(s.dashRefresh/time.Second))),
	}
	buckets, err := s.db.ChecksPerBucket(ctx, day, end, dashBucket)
	if err != nil {
		return m, fmt.Errorf("dashboard: %w", err)
	}
	m.Timeline = timelineChart(t, day, now, buckets)
	for _, b := range buckets {
		m.Allow += b.Allow
		m.Deny += b.Deny
	}
	reasons, err := s.db.DenyReasons(ctx, day, end)
	if err != nil {
		return m, fmt.Errorf("dashboard: %w", err)
	}
	m.Reasons = reasonsChart(t, reasons)
	sources, err := s.db.ChecksPerSource(ctx, day, end)
	if err != nil {
		return m, fmt.Errorf("dashboard: %w", err)
	}
	m.Sources, m.MoreSources = sourcesChart(t, sources)
	// The store counts places by quarter hour: the last hour is the
	// quarters since the one an hour ago began.
	since := now.Add(-dashPlacesSpan).Truncate(15 * time.Minute)
	places, err := s.db.BusiestPlaces(ctx, since, end, dashPlacesLimit)
	if err != nil {
		return m, fmt.Errorf("dashboard: %w", err)
	}
	m.Places = placesChart(t, places, since.Format("15:04"))
	m.Appliances, err = s.dashAppliances(ctx, t, now)
	if err != nil {
		return m, fmt.Errorf("dashboard: %w", err)
	}
	return m, nil
}

// Chart series of the decisions, coloured as on the gate screen.
func decisionSeries(t i18n.Printer) []view.ChartSeries {
	return []view.ChartSeries{
		{Label: t.T("dash.allow"), Class: "allow"},
		{Label: t.T("dash.deny"), Class: "deny"},
	}
}

func timelineChart(t i18n.Printer, day, now time.Time, buckets []store.DecisionCount) view.TimeChart {
	c := view.TimeChart{
		ID: "chart-timeline", Title: t.T("dash.timeline"), Series: decisionSeries(t),
		Now: -1, NowLabel: t.T("dash.now", now.Format("15:04")),
	}
	for i, b := range buckets {
		from := day.Add(time.Duration(i) * dashBucket)
		c.Values = append(c.Values, []int64{b.Allow, b.Deny})
		c.BucketLabels = append(c.BucketLabels, from.Format("15:04")+"–"+from.Add(dashBucket).Format("15:04"))
		if from.Minute() == 0 && from.Hour()%3 == 0 {
			c.Ticks = append(c.Ticks, view.ChartTick{At: i, Label: from.Format("15:04")})
		}
		if !now.Before(from) && now.Before(from.Add(dashBucket)) {
			c.Now = i
		}
	}
	return c
}

// reasonsChart labels each reason in Chinese with the English under it,
// whatever the page's language: the words staff use at the gate.
func reasonsChart(t i18n.Printer, reasons []store.ReasonCount) view.BarChart {
	c := view.BarChart{
		ID: "chart-reasons", Title: t.T("dash.reasons"), Narrow: true,
		Series: []view.ChartSeries{{Label: t.T("dash.deny"), Class: "deny"}},
	}
	for _, r := range reasons {
		row := view.BarRow{Label: r.Reason, Values: []int64{r.N}}
		if msg, ok := i18n.Lookup("reason." + r.Reason); ok {
			row.Label, row.Sub = msg.ZH, msg.EN
		}
		c.Rows = append(c.Rows, row)
	}
	return c
}

// sourcesChart shows the busiest sources and says how many more there are.
func sourcesChart(t i18n.Printer, sources []store.SourceCount) (view.BarChart, int) {
	c := view.BarChart{ID: "chart-sources", Title: t.T("dash.sources"), Series: decisionSeries(t)}
	for i, s := range sources {
		if i == dashSourceLimit {
			return c, len(sources) - i
		}
		c.Rows = append(c.Rows, view.BarRow{Label: s.Source, Sub: applianceLabel(t, s.Appliance), Values: []int64{s.Allow, s.Deny}})
	}
	return c, 0
}

func placesChart(t i18n.Printer, places []store.PlaceCount, since string) view.BarChart {
	c := view.BarChart{
		ID: "chart-places", Title: t.T("dash.places", since), Narrow: true,
		Series: []view.ChartSeries{{Label: t.T("dash.checks"), Class: "total"}},
	}
	for _, p := range places {
		c.Rows = append(c.Rows, view.BarRow{Label: p.Place, Sub: applianceLabel(t, p.Appliance), Values: []int64{p.N}})
	}
	return c
}

// applianceLabel names where a source is: another appliance at a hub,
// nothing for this one.
func applianceLabel(t i18n.Printer, name string) string {
	if name == "" {
		return ""
	}
	return t.T("dash.at_appliance", name)
}

// dashAppliances is the hub's appliances that are enrolled and in use,
// with the ages the appliances page shows. An appliance pulls its lists
// whenever it calls in, so its lists are as old as its last contact.
func (s *Server) dashAppliances(ctx context.Context, t i18n.Printer, now time.Time) ([]view.DashAppliance, error) {
	loc := s.zone(ctx)
	// An appliance's lists are as old as its last contact: it pulls them
	// each time it calls in.
	staleAfter := s.checker.Policy().StaleAfter
	if staleAfter <= 0 {
		staleAfter = store.DefaultStaleAfter
	}
	rows, err := s.applianceRows(ctx)
	if err != nil {
		return nil, err
	}
	var out []view.DashAppliance
	for _, a := range rows {
		if a.State != "active" {
			continue
		}
		d := view.DashAppliance{Name: a.Name, Role: a.Role, Backlog: a.Backlog, Behind: a.Behind, Age: t.T("sync.never")}
		if a.LastContact.IsZero() {
			d.Stale = true
		} else {
			age := now.Sub(a.LastContact)
			d.LastContact = a.LastContact.In(loc).Format("15:04:05")
			d.Age = fmtAge(t, age)
			d.Stale = age > staleAfter
		}
		out = append(out, d)
	}
	return out, nil
}
