package web

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"passgate/export"
	"passgate/store"
	"passgate/web/i18n"
	"passgate/web/view"
)

// auditPageSize is how many records a page of the audit trail shows.
const auditPageSize = 50

// handleAudit shows one page of the audit trail, filtered. A filter that
// does not parse comes back as typed with its message, and no records.
func (s *Server) handleAudit(w http.ResponseWriter, r *http.Request) {
	loc, err := s.db.Location(r.Context())
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	m, q := parseAuditFilter(r.URL.Query(), i18n.FromRequest(r), loc)
	if len(m.Errors) > 0 {
		m.Error = i18n.FromRequest(r).T("error.form_invalid")
		s.render(w, r, http.StatusUnprocessableEntity, view.AdminAuditPage(s.adminPage(r, "admin.audit"), m))
		return
	}
	if err := s.fillAuditPage(r, &m, q, loc); err != nil {
		s.internalError(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, view.AdminAuditPage(s.adminPage(r, "admin.audit"), m))
}

// handleAuditVerify runs the whole check of the trail against the newest
// signed checkpoint and shows its outcome above the newest records.
func (s *Server) handleAuditVerify(w http.ResponseWriter, r *http.Request) {
	if !readForm(w, r, maxAdminForm) {
		return
	}
	loc, err := s.db.Location(r.Context())
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	vv, err := s.verifyAudit(r, loc)
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	m, q := parseAuditFilter(url.Values{}, i18n.FromRequest(r), loc)
	m.Verify = vv
	if err := s.fillAuditPage(r, &m, q, loc); err != nil {
		s.internalError(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, view.AdminAuditPage(s.adminPage(r, "admin.audit"), m))
}

// verifyAudit checks the trail against the newest checkpoint in the
// checkpoint file (none configured or none written yet: the chain
// alone). A broken trail is an outcome to show, not an error.
func (s *Server) verifyAudit(r *http.Request, loc *time.Location) (*view.AuditVerifyView, error) {
	var notes [][]byte
	if s.auditCheckpoints != "" {
		var err error
		if notes, err = store.ReadCheckpointFile(s.auditCheckpoints); err != nil {
			return nil, err
		}
	}
	v, cp, err := s.db.VerifyAuditAgainstNewest(r.Context(), notes)
	vv := &view.AuditVerifyView{OK: err == nil, CheckedAt: time.Now().In(loc).Format(time.DateTime)}
	var broken *store.AuditError
	switch {
	case errors.As(err, &broken):
		vv.Message = broken.Error()
		s.log.Error("AUDIT TRAIL BROKEN", "err", broken.Error(), "checked_by", actorOf(r))
	case err != nil:
		return nil, err
	}
	vv.Records, vv.Size, vv.Root = v.Records, v.Size, base64.StdEncoding.EncodeToString(v.Root[:])
	if cp != nil {
		vv.HasCheckpoint, vv.CheckpointSize, vv.CheckpointOrigin = true, cp.Size, cp.Origin
		vv.CheckpointRoot = base64.StdEncoding.EncodeToString(cp.Root[:])
	}
	return vv, nil
}

// parseAuditFilter reads the filter of the audit page: dates in the
// district's zone (as export.ParseTime reads them everywhere), an actor,
// an action from store.AuditActions and the page's start.
func parseAuditFilter(v url.Values, t i18n.Printer, loc *time.Location) (view.AuditView, store.AuditPage) {
	m := view.AuditView{
		From: strings.TrimSpace(v.Get("from")), To: strings.TrimSpace(v.Get("to")),
		Actor: strings.TrimSpace(v.Get("actor")), Action: strings.TrimSpace(v.Get("action")),
		Actions: store.AuditActions, Zone: loc.String(), Errors: view.FieldErrors{},
	}
	q := store.AuditPage{Actor: store.Actor(m.Actor), Action: m.Action, Limit: auditPageSize}
	var err error
	if m.From != "" {
		if q.From, err = export.ParseTime("from", m.From, loc); err != nil {
			m.Errors["from"] = t.T("admin.audit.err.time")
		}
	}
	if m.To != "" {
		if q.To, err = export.ParseTime("to", m.To, loc); err != nil {
			m.Errors["to"] = t.T("admin.audit.err.time")
		}
	}
	if m.Errors["from"] == "" && m.Errors["to"] == "" && !q.From.IsZero() && !q.To.IsZero() && !q.From.Before(q.To) {
		m.Errors["to"] = t.T("admin.audit.err.range")
	}
	if len(m.Actor) > 256 {
		m.Errors["actor"] = t.T("admin.audit.err.actor")
	}
	if m.Action != "" && !slices.Contains(store.AuditActions, m.Action) {
		m.Errors["action"] = t.T("admin.audit.err.action")
	}
	if b := v.Get("before"); b != "" {
		if q.Before, err = strconv.ParseInt(b, 10, 64); err != nil || q.Before <= 0 {
			m.Errors["before"] = t.T("admin.audit.err.before")
			m.Error = m.Errors["before"]
		}
	}
	return m, q
}

// fillAuditPage reads the page q selects into m, with the link to the
// next page carrying the same filter.
func (s *Server) fillAuditPage(r *http.Request, m *view.AuditView, q store.AuditPage, loc *time.Location) error {
	recs, next, err := s.db.FindAuditPage(r.Context(), q)
	if err != nil {
		return err
	}
	for _, rec := range recs {
		m.Rows = append(m.Rows, view.AuditRow{
			Seq: rec.Seq, At: rec.At.In(loc).Format("2006-01-02 15:04:05"),
			Actor: string(rec.Actor), Action: rec.Action, Subject: rec.Subject, Detail: auditDetailPairs(rec.Detail),
		})
	}
	if next > 0 {
		v := url.Values{}
		for k, val := range map[string]string{"from": m.From, "to": m.To, "actor": m.Actor, "action": m.Action} {
			if val != "" {
				v.Set(k, val)
			}
		}
		v.Set("before", strconv.FormatInt(next, 10))
		m.Next = "/admin/audit?" + v.Encode()
	}
	return nil
}

// Bounds on the detail shown: a record's detail is at most 4 KiB when
// the store writes it, but the page reads whatever the file holds.
const (
	maxDetailPairs = 100
	maxDetailDepth = 8
	maxDetailBytes = 64 << 10
)

// auditDetailPairs flattens a record's detail, a JSON object, into its
// values in document order, each under its path ("old.colors",
// "ids.0"). A detail that is not an object (only a damaged or forged
// file holds one) is shown whole as one value; so is the rest of a
// detail past the bounds. The page escapes every key and value.
func auditDetailPairs(detail []byte) []view.AuditDetailPair {
	if len(bytes.TrimSpace(detail)) == 0 {
		return nil
	}
	raw := func() []view.AuditDetailPair {
		s := detail
		if len(s) > maxDetailBytes {
			s = s[:maxDetailBytes]
		}
		return []view.AuditDetailPair{{Value: strings.ToValidUTF8(string(s), "\uFFFD")}}
	}
	if len(detail) > maxDetailBytes {
		return raw()
	}
	dec := json.NewDecoder(bytes.NewReader(detail))
	dec.UseNumber()
	var out []view.AuditDetailPair
	tok, err := dec.Token()
	if d, ok := tok.(json.Delim); err != nil || !ok || d != '{' {
		return raw()
	}
	if err := flattenObject(dec, "", 1, &out); err != nil || len(out) > maxDetailPairs {
		return raw()
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return raw() // trailing data after the object
	}
	return out
}

// errDetailBounds stops a flattening that exceeds the bounds.
var errDetailBounds = errors.New("detail too large to show as pairs")

// flattenObject reads an object's members after its '{', up to and
// including its '}'.
func flattenObject(dec *json.Decoder, prefix string, depth int, out *[]view.AuditDetailPair) error {
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		key, _ := tok.(string)
		if err := flattenValue(dec, join(prefix, key), depth, out); err != nil {
			return err
		}
	}
	_, err := dec.Token() // '}'
	return err
}

// flattenValue reads one value under path.
func flattenValue(dec *json.Decoder, path string, depth int, out *[]view.AuditDetailPair) error {
	if depth > maxDetailDepth || len(*out) > maxDetailPairs {
		return errDetailBounds
	}
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch v := tok.(type) {
	case json.Delim:
		if v == '{' {
			return flattenObject(dec, path, depth+1, out)
		}
		for i := 0; dec.More(); i++ { // '['
			if err := flattenValue(dec, join(path, strconv.Itoa(i)), depth+1, out); err != nil {
				return err
			}
		}
		_, err := dec.Token() // ']'
		return err
	case string:
		*out = append(*out, view.AuditDetailPair{Key: path, Value: v})
	case json.Number:
		*out = append(*out, view.AuditDetailPair{Key: path, Value: v.String()})
	case bool:
		*out = append(*out, view.AuditDetailPair{Key: path, Value: strconv.FormatBool(v)})
	case nil:
		*out = append(*out, view.AuditDetailPair{Key: path, Value: "null"})
	}
	return nil
}

// join is a detail path: parent and key with a dot.
func join(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return prefix + "." + key
}
