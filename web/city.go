package web

import (
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"passgate/citytrace"
	"passgate/district"
	"passgate/export"
	"passgate/pass"
	"passgate/store"
	"passgate/web/i18n"
	"passgate/web/view"
)

// CityConsole is what the city health commission's console needs: its
// connection to the city tier (as the city user, the only one the
// engine lets publish trace requests), the districts to ask, and the
// city pseudonym key that turns an ID number into the city subject.
type CityConsole struct {
	Conn      *nats.Conn
	Districts []string
	Key       []byte        // pass.CityKeyLen bytes
	Timeout   time.Duration // how long the districts are waited for; 0: 10 s
}

// cityTimeout is how long a city trace waits for the districts by
// default.
const cityTimeout = 10 * time.Second

// handleCityForm shows the city trace form, preset to the last 14 days.
func (s *Server) handleCityForm(w http.ResponseWriter, r *http.Request) {
	loc := s.zone(r.Context())
	y, mo, d := time.Now().In(loc).Date()
	tomorrow := time.Date(y, mo, d+1, 0, 0, 0, 0, loc)
	s.render(w, r, http.StatusOK, view.CityTracePage(s.adminPage(r, "city.trace"), s.cityModel(view.TraceForm{
		From: tomorrow.AddDate(0, 0, -14).Format(time.DateOnly), To: tomorrow.Format(time.DateOnly), Window: traceDefaultWindow,
	})))
}

func (s *Server) cityModel(f view.TraceForm) view.CityTrace {
	m := view.CityTrace{Form: f, Joined: s.cityJoined()}
	if m.Joined {
		m.Districts = s.city.Districts
	}
	return m
}

// handleCityTrace asks every district for the person's checks and shows
// the merged result, naming every district that did not answer. The ID
// number becomes the city subject here and goes nowhere; the query is
// audited here with the districts that answered and those that did not.
func (s *Server) handleCityTrace(w http.ResponseWriter, r *http.Request) {
	if !readForm(w, r, maxAdminForm) {
		return
	}
	t := i18n.FromRequest(r)
	p := s.adminPage(r, "city.trace")
	f := r.PostForm
	form := view.TraceForm{IDNumber: f.Get("id_number"), From: strings.TrimSpace(f.Get("from")), To: strings.TrimSpace(f.Get("to")),
		Window: strings.TrimSpace(f.Get("window")), Errors: view.FieldErrors{}}
	m := s.cityModel(form)
	if !m.Joined {
		s.render(w, r, http.StatusServiceUnavailable, view.CityTracePage(p, m))
		return
	}
	req := &export.TraceRequest{Location: s.zone(r.Context())}
	id, err := district.CheckIDNumber(form.IDNumber, time.Now())
	if err != nil {
		for k, v := range fieldErrs(t, err) {
			m.Form.Errors[k] = v
		}
	}
	parseTraceTimes(t, req, form.From, form.To, form.Window, m.Form.Errors)
	if len(m.Form.Errors) > 0 {
		m.Form.Error = t.T("error.form_invalid")
		s.render(w, r, http.StatusUnprocessableEntity, view.CityTracePage(p, m))
		return
	}
	subject := pass.Pseudonym(s.city.Key, id)
	timeout := s.city.Timeout
	if timeout <= 0 {
		timeout = cityTimeout
	}
	asker := string(actorOf(r))
	res, err := citytrace.AskDistricts(r.Context(), s.city.Conn, s.city.Districts, citytrace.Ask{Asker: asker,
		Subjects: []pass.Subject{subject}, From: req.From, To: req.To, Window: req.Window}, timeout)
	if err != nil {
		s.log.Error("city trace", "err", err)
		m.Form.Error = t.T("city.trace.err.unavailable")
		s.render(w, r, http.StatusServiceUnavailable, view.CityTracePage(p, m))
		return
	}
	missing := make([]string, len(res.Missing))
	for i, x := range res.Missing {
		missing[i] = x.District + ": " + x.Why
	}
	if err := s.db.Audit(r.Context(), &store.AuditRecord{Actor: actorOf(r), Action: store.AuditCityTraceAsked,
		Subject: hex.EncodeToString(subject[:]), Detail: store.AuditDetail(map[string]any{"request": res.ID,
			"from": req.From.UTC().Format(time.RFC3339), "to": req.To.UTC().Format(time.RFC3339),
			"window_minutes": int(req.Window / time.Minute), "answered": res.Answered, "missing": missing,
			"checks": len(res.Checks), "contacts": len(res.Contacts)})}); err != nil {
		s.internalError(w, r, errors.Join(errors.New("city trace: audit"), err))
		return
	}
	m.Form.IDNumber = "" // the result page does not carry the number on
	m.Result = cityResultView(req, res)
	s.render(w, r, http.StatusOK, view.CityTracePage(p, m))
}

// cityResultView is a city trace as the page shows it.
func cityResultView(req *export.TraceRequest, res *citytrace.Result) *view.CityTraceResult {
	loc := req.Location
	v := &view.CityTraceResult{Answered: res.Answered, Truncated: res.Truncated,
		Span: req.From.In(loc).Format("2006-01-02 15:04") + " – " + req.To.In(loc).Format("2006-01-02 15:04")}
	for _, c := range res.Checks {
		v.Checks = append(v.Checks, view.CityTraceCheck{District: c.District, At: time.UnixMilli(c.AtMS).In(loc).Format("2006-01-02 15:04:05"),
			Place: c.Place, Decision: c.Decision, Contacts: len(c.Contacts)})
	}
	for _, c := range res.Contacts {
		v.Contacts = append(v.Contacts, view.CityTraceContact{Subject: c.Subject[:min(8, len(c.Subject))], Overlaps: c.Overlaps,
			Districts: strings.Join(c.Districts, ", ")})
	}
	for _, x := range res.Missing {
		v.Missing = append(v.Missing, view.CityTraceMissing{District: x.District, Why: x.Why})
	}
	return v
}
