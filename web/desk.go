package web

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"passgate/assets"
	"passgate/district"
	"passgate/pass"
	"passgate/store"
	"passgate/web/i18n"
	"passgate/web/view"
)

// maxFormBytes bounds the desk's plain forms.
const maxFormBytes = 64 << 10

// deskPage is the layout data of a desk page, with its stylesheet.
func (s *Server) deskPage(r *http.Request, titleKey string) view.Page {
	p := s.page(r, titleKey)
	p.CSS = append(p.CSS, assets.Path("/assets/", "desk.css"))
	return p
}

// fieldErrs translates district field errors into the page language.
func fieldErrs(t i18n.Printer, err error) view.FieldErrors {
	out := view.FieldErrors{}
	var many store.FieldErrors
	var one *store.FieldError
	switch {
	case errors.As(err, &many):
		for _, fe := range many {
			if _, dup := out[fe.Field]; !dup {
				out[fe.Field] = t.T(fe.Code, fe.Args...)
			}
		}
	case errors.As(err, &one):
		out[one.Field] = t.T(one.Code, one.Args...)
	}
	return out
}

func (s *Server) handleDesk(w http.ResponseWriter, r *http.Request) {
	p := s.deskPage(r, "desk.title")
	s.render(w, r, http.StatusOK, view.DeskPage(p, view.Desk{Register: view.RegisterForm{IDType: store.IDMainland}}))
}

// handleDeskFind looks a resident up by ID number (by its pseudonym) and
// sends the browser to their page. The number comes in a POST body so it
// never lands in a URL.
func (s *Server) handleDeskFind(w http.ResponseWriter, r *http.Request) {
	if !readForm(w, r, maxFormBytes) {
		return
	}
	p := s.deskPage(r, "desk.title")
	id := strings.TrimSpace(r.PostForm.Get("id_number"))
	m := view.Desk{FindID: id, Register: view.RegisterForm{IDType: store.IDMainland, IDNumber: id}}
	// A mainland number is checked like everywhere else; one whose only
	// fault is its check digit is still looked up, as a legacy number may
	// have been registered with it, and is named as wrong if it was not.
	_, err := district.CheckIDNumber(id, s.db.Now())
	badDigit := district.IsBadCheckDigit(err)
	if err != nil && !badDigit {
		if fe := fieldErrs(p.T, err); len(fe) > 0 {
			m.FindErr = fe["id_number"]
			s.render(w, r, http.StatusUnprocessableEntity, view.DeskPage(p, m))
			return
		}
		s.internalError(w, r, err)
		return
	}
	subjects, err := district.SubjectsOf(r.Context(), s.db, id)
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	// The city subject first; a person not seen since the district
	// joined the city is still under the district's.
	subject := subjects[0]
	for _, sub := range subjects {
		if _, err = s.db.FindPerson(r.Context(), sub); !errors.Is(err, store.ErrNotFound) {
			subject = sub
			break
		}
	}
	if errors.Is(err, store.ErrNotFound) {
		status := http.StatusNotFound
		m.FindErr = p.T.T("desk.not_found")
		if badDigit {
			status = http.StatusUnprocessableEntity
			m.FindErr = p.T.T("desk.find_check_digit")
			m.Register.AskBadCheckDigit = true
		}
		s.render(w, r, status, view.DeskPage(p, m))
		return
	} else if err != nil {
		s.internalError(w, r, err)
		return
	}
	http.Redirect(w, r, "/desk/people/"+hex.EncodeToString(subject[:]), http.StatusSeeOther)
}

func (s *Server) handleDeskRegister(w http.ResponseWriter, r *http.Request) {
	if !readForm(w, r, maxFormBytes) {
		return
	}
	f := view.RegisterForm{
		Name: r.PostForm.Get("name"), IDType: r.PostForm.Get("id_type"),
		IDNumber: r.PostForm.Get("id_number"), Phone: r.PostForm.Get("phone"),
		AllowBadCheckDigit: r.PostForm.Get("allow_bad_check_digit") == "1",
	}
	person, created, err := district.Register(r.Context(), s.db, district.RegisterRequest{
		Name: f.Name, IDType: f.IDType, IDNumber: f.IDNumber, Phone: f.Phone, Actor: actorOf(r),
		AllowBadCheckDigit: f.AllowBadCheckDigit,
	})
	if err != nil {
		p := s.deskPage(r, "desk.title")
		if f.Errs = fieldErrs(p.T, err); len(f.Errs) > 0 {
			// Only a number that is wrong in its check digit alone may
			// be confirmed as a legacy one.
			f.AskBadCheckDigit = hasBadCheckDigit(err)
			s.render(w, r, http.StatusUnprocessableEntity, view.DeskPage(p, view.Desk{Register: f}))
			return
		}
		s.internalError(w, r, err)
		return
	}
	note := "registered"
	if !created {
		note = "updated"
	}
	http.Redirect(w, r, "/desk/people/"+hex.EncodeToString(person.Subject[:])+"?done="+note, http.StatusSeeOther)
}

// systemReasons are the status history reasons the appliance itself
// records, in English in the store; a clerk's own reason is shown as typed.
var systemReasons = map[string]string{
	store.ReasonRegistered:    "desk.history.registered",
	store.ReasonUpdated:       "desk.history.updated",
	store.ReasonPositive:      "desk.history.positive",
	district.ReasonSetAtIssue: "desk.history.set_at_issue",
}

// deskNotices are the notices a redirect may ask a person page to show.
var deskNotices = map[string]string{
	"registered": "desk.registered", "updated": "desk.updated", "test": "desk.test_saved",
	"test_unchanged": "desk.test_unchanged", "positive": "desk.positive_saved",
	"doses": "desk.doses_saved", "status": "desk.status_saved",
}

// hasBadCheckDigit reports whether the field errors of a registration
// include a wrong check digit of the ID number.
func hasBadCheckDigit(err error) bool {
	var many store.FieldErrors
	if errors.As(err, &many) {
		for _, fe := range many {
			if district.IsBadCheckDigit(fe) {
				return true
			}
		}
	}
	return district.IsBadCheckDigit(err)
}

// subjectParam parses the {subject} of a desk URL.
func subjectParam(r *http.Request) (pass.Subject, bool) {
	var s pass.Subject
	b, err := hex.DecodeString(r.PathValue("subject"))
	if err != nil || len(b) != len(s) {
		return s, false
	}
	copy(s[:], b)
	return s, !s.IsZero()
}

// personModel loads a person's page model; false after answering.
func (s *Server) personModel(w http.ResponseWriter, r *http.Request) (view.Page, view.DeskPerson, pass.Subject, bool) {
	p := s.deskPage(r, "desk.person")
	subject, ok := subjectParam(r)
	if !ok {
		s.fail(w, r, &Error{Code: ENotFound})
		return p, view.DeskPerson{}, subject, false
	}
	person, err := s.db.FindPerson(r.Context(), subject)
	if errors.Is(err, store.ErrNotFound) {
		s.fail(w, r, &Error{Code: ENotFound, Key: "desk.err.not_found"})
		return p, view.DeskPerson{}, subject, false
	}
	if err != nil {
		s.internalError(w, r, err)
		return p, view.DeskPerson{}, subject, false
	}
	hist, err := s.db.StatusHistory(r.Context(), subject)
	if err != nil {
		s.internalError(w, r, err)
		return p, view.DeskPerson{}, subject, false
	}
	now := s.db.Now()
	m := view.DeskPerson{
		Subject: hex.EncodeToString(subject[:]), MaskedName: person.MaskedName, IDTail: person.IDTail,
		IDType: person.IDType, Phone: person.Phone, Color: person.Color.String(), TestedAt: person.TestedAt,
		Doses: person.Doses, DosesValue: strconv.Itoa(person.Doses), NewColor: person.Color.String(),
		Now: now.In(p.Zone).Add(time.Minute).Format(datetimeLocal),
	}
	if m.Verdict, err = s.personVerdict(r.Context(), p.T, subject); err != nil {
		s.internalError(w, r, err)
		return p, view.DeskPerson{}, subject, false
	}
	for i := len(hist) - 1; i >= 0; i-- { // newest first
		h := hist[i]
		row := view.StatusRow{At: h.At, To: h.To.String(), Reason: h.Reason, Actor: string(h.Actor)}
		if key, ok := systemReasons[h.Reason]; ok {
			row.Reason = p.T.T(key)
		}
		if h.From != 0 {
			row.From = h.From.String()
		}
		m.History = append(m.History, row)
	}
	return p, m, subject, true
}

// datetimeLocal is the value format of an <input type="datetime-local">.
const datetimeLocal = "2006-01-02T15:04"

func (s *Server) handleDeskPerson(w http.ResponseWriter, r *http.Request) {
	p, m, subject, ok := s.personModel(w, r)
	if !ok {
		return
	}
	// Opening a record by pseudonym shows who the pseudonym is: each
	// look-up is on record, before the page shows anything.
	if err := s.db.Audit(r.Context(), &store.AuditRecord{Actor: actorOf(r), Action: store.AuditPersonLookup,
		Subject: hex.EncodeToString(subject[:])}); err != nil {
		s.internalError(w, r, err)
		return
	}
	switch done := r.URL.Query().Get("done"); {
	case done == "voided":
		// A "change" to the same colour only voids the earlier passes
		// (a lost card): say that, not that the colour changed.
		m.Notice = p.T.T("desk.status_voided", p.T.T("color."+m.Color))
	default:
		if key, ok := deskNotices[done]; ok {
			m.Notice = p.T.T(key)
		}
	}
	s.render(w, r, http.StatusOK, view.DeskPersonPage(p, m))
}

// redirectPerson sends the browser back to the person page with a notice
// (post/redirect/get, so a reload does not post again).
func redirectPerson(w http.ResponseWriter, r *http.Request, subject pass.Subject, done string) {
	http.Redirect(w, r, "/desk/people/"+hex.EncodeToString(subject[:])+"?done="+done, http.StatusSeeOther)
}

// parseSampleTime reads a datetime-local value (or one with seconds) in
// the district's time zone loc, whatever zone the server runs in.
func parseSampleTime(v string, loc *time.Location) (time.Time, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return time.Time{}, &store.FieldError{Field: "sample_time", Code: "desk.err.required"}
	}
	for _, layout := range []string{datetimeLocal, "2006-01-02T15:04:05"} {
		if t, err := time.ParseInLocation(layout, v, loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, &store.FieldError{Field: "sample_time", Code: "desk.err.bad_time"}
}

func (s *Server) handleDeskTest(w http.ResponseWriter, r *http.Request) {
	if !readForm(w, r, maxFormBytes) {
		return
	}
	p, m, subject, ok := s.personModel(w, r)
	if !ok {
		return
	}
	m.SampleTime, m.Result = r.PostForm.Get("sample_time"), r.PostForm.Get("result")
	at, err := parseSampleTime(m.SampleTime, p.Zone)
	if err == nil && m.Result != "negative" && m.Result != "positive" {
		err = &store.FieldError{Field: "result", Code: "desk.err.unknown"}
	}
	var changed bool
	if err == nil {
		changed, err = district.RecordTest(r.Context(), s.db, subject, at, m.Result == "positive", actorOf(r))
	}
	if err != nil {
		if m.Errs = fieldErrs(p.T, err); len(m.Errs) > 0 {
			s.render(w, r, http.StatusUnprocessableEntity, view.DeskPersonPage(p, m))
			return
		}
		s.internalError(w, r, err)
		return
	}
	switch {
	case m.Result == "positive":
		redirectPerson(w, r, subject, "positive")
	case changed:
		redirectPerson(w, r, subject, "test")
	default:
		redirectPerson(w, r, subject, "test_unchanged")
	}
}

func (s *Server) handleDeskDoses(w http.ResponseWriter, r *http.Request) {
	if !readForm(w, r, maxFormBytes) {
		return
	}
	p, m, subject, ok := s.personModel(w, r)
	if !ok {
		return
	}
	m.DosesValue = r.PostForm.Get("doses")
	n, err := strconv.Atoi(strings.TrimSpace(m.DosesValue))
	if err != nil {
		err = &store.FieldError{Field: "doses", Code: "desk.err.doses_range"}
	} else {
		err = district.SetDoses(r.Context(), s.db, subject, n, actorOf(r))
	}
	if err != nil {
		if m.Errs = fieldErrs(p.T, err); len(m.Errs) > 0 {
			s.render(w, r, http.StatusUnprocessableEntity, view.DeskPersonPage(p, m))
			return
		}
		s.internalError(w, r, err)
		return
	}
	redirectPerson(w, r, subject, "doses")
}

func (s *Server) handleDeskStatus(w http.ResponseWriter, r *http.Request) {
	if !readForm(w, r, maxFormBytes) {
		return
	}
	p, m, subject, ok := s.personModel(w, r)
	if !ok {
		return
	}
	m.NewColor, m.Reason = r.PostForm.Get("color"), r.PostForm.Get("reason")
	color, _ := pass.ParseColor(m.NewColor) // unknown: 0, which SetSubjectStatus reports on the field
	ch, err := district.SetSubjectStatus(r.Context(), s.db, subject, color, m.Reason, actorOf(r))
	if err != nil {
		if m.Errs = fieldErrs(p.T, err); len(m.Errs) > 0 {
			s.render(w, r, http.StatusUnprocessableEntity, view.DeskPersonPage(p, m))
			return
		}
		s.internalError(w, r, err)
		return
	}
	if ch.From == ch.To {
		redirectPerson(w, r, subject, "voided")
		return
	}
	redirectPerson(w, r, subject, "status")
}

// QR scales: a phone pass is shown large on a screen and photographed; a
// printed card is scaled by CSS to a fixed size, so a small PNG (crisp
// with image-rendering: pixelated) keeps a bulk print page light.
const (
	phoneQRScale = 8
	paperQRScale = 3
)

// handleDeskPass issues a phone pass (shown large) or a paper pass (the
// A6 print view) for a registered resident. It answers the POST directly:
// the pass text is not kept, so a reload asks to issue a new one.
func (s *Server) handleDeskPass(w http.ResponseWriter, r *http.Request) {
	if !readForm(w, r, maxFormBytes) {
		return
	}
	p := s.deskPage(r, "desk.pass.title")
	subject, ok := subjectParam(r)
	if !ok {
		s.render(w, r, http.StatusNotFound, view.Message(p, p.T.T("error.not_found")))
		return
	}
	kind := pass.Phone
	switch r.PostForm.Get("kind") {
	case "phone":
	case "paper":
		kind = pass.Paper
	default:
		s.render(w, r, http.StatusUnprocessableEntity, view.Message(p, p.T.T("desk.err.unknown")))
		return
	}
	cards, err := s.issueCards(r, []pass.Subject{subject}, kind)
	if errors.Is(err, store.ErrNotFound) {
		s.render(w, r, http.StatusNotFound, view.Message(p, p.T.T("desk.err.not_found")))
		return
	}
	if s.issueRefused(w, r, p, err) {
		return
	}
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	if kind == pass.Phone {
		s.render(w, r, http.StatusOK, view.PhonePassPage(p, cards[0]))
		return
	}
	s.render(w, r, http.StatusOK, view.PrintPage(s.printPage(r), view.Print{Cards: cards, Back: "/desk/people/" + hex.EncodeToString(subject[:])}))
}

// statusElsewhere answers 422 with what to do when err says the district
// changed a person's status elsewhere since this appliance recorded it,
// and reports whether it did.
func (s *Server) statusElsewhere(w http.ResponseWriter, r *http.Request, p view.Page, err error) bool {
	var se *district.StatusElsewhereError
	if !errors.As(err, &se) {
		return false
	}
	s.render(w, r, http.StatusUnprocessableEntity, view.Message(p,
		p.T.T("desk.err.status_elsewhere", p.Clock(se.At).Format("2006-01-02 15:04"), se.Reason)))
	return true
}

// issueRefused answers an issue the district refuses: at an appliance
// its hub is retiring (draining), or for a status changed elsewhere. It
// reports whether it answered.
func (s *Server) issueRefused(w http.ResponseWriter, r *http.Request, p view.Page, err error) bool {
	if errors.Is(err, store.ErrDraining) {
		s.render(w, r, http.StatusConflict, view.Message(p, p.T.T("desk.err.draining")))
		return true
	}
	return s.statusElsewhere(w, r, p, err)
}

// printPage is the layout data of a print view: its own stylesheets and
// the small script of the print button.
func (s *Server) printPage(r *http.Request) view.Page {
	p := s.page(r, "desk.print.title")
	// desk.css for the refusal notes shown above the cards (not printed).
	p.CSS = append(p.CSS, assets.Path("/assets/", "desk.css"), assets.Path("/assets/", "print.css"))
	p.JS = append(p.JS, assets.Path("/assets/", "desk.js"))
	return p
}

// issueCards issues passes of kind for registered subjects and renders
// their QR codes, spread over the CPUs (a QR PNG takes a few
// milliseconds; a sheet of 1,000 would take seconds on one core).
func (s *Server) issueCards(r *http.Request, subjects []pass.Subject, kind pass.Kind) ([]view.PassCard, error) {
	ctx := r.Context()
	d, err := s.db.District(ctx)
	if err != nil {
		return nil, err
	}
	pol, err := s.db.Policy(ctx)
	if err != nil {
		return nil, err
	}
	issued, err := district.IssueRegistered(ctx, s.db, subjects, kind, actorOf(r))
	if err != nil {
		return nil, err
	}
	t, now := i18n.FromRequest(r), s.db.Now()
	scale := paperQRScale
	if kind == pass.Phone {
		scale = phoneQRScale
	}
	cards := make([]view.PassCard, len(issued))
	errs := make([]error, len(issued))
	var wg sync.WaitGroup
	next := make(chan int)
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for i := range next {
				iss := issued[i]
				png, _, err := pass.QRPNG(iss.Text, scale)
				if err != nil {
					errs[i] = err
					continue
				}
				c := iss.Claims
				cards[i] = view.PassCard{
					QR:         "data:image/png;base64," + base64.StdEncoding.EncodeToString(png),
					MaskedName: c.Name, IDTail: c.IDTail, Color: c.Color.String(), Kind: c.Kind.String(),
					IssuedAt: c.IssuedAt, ExpiresAt: c.ExpiresAt, District: d.Name,
					Subject: hex.EncodeToString(c.Subject[:]),
				}
				judgeCard(t, pol, &c, now, &cards[i])
			}
		})
	}
	for i := range issued {
		next <- i
	}
	close(next)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return cards, nil
}
