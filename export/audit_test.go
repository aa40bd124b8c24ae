package export

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"passgate/store"
)

// appendAudit appends n records one minute apart from day0, with Chinese
// text and injected formulas in actor, subject and detail, cycling
// through a few actions.
func appendAudit(t *testing.T, db *store.DB, n int) {
	t.Helper()
	actions := []string{store.AuditLogin, store.AuditPolicyChanged, store.AuditExport, store.AuditTrace}
	for i := range n {
		rec := &store.AuditRecord{
			At:      day0.Add(time.Duration(i) * time.Minute),
			Actor:   []store.Actor{"管理员", "=admin", "@王五", "cli"}[i%4],
			Action:  actions[i%len(actions)],
			Subject: injected[i%len(injected)],
			Detail:  store.AuditDetail(map[string]any{"reason": "密接者，居家隔离", "n": i}),
		}
		if i%5 == 0 {
			rec.Detail = nil // a record without detail exports an empty cell
		}
		if i%7 == 3 {
			rec.Detail = json.RawMessage(`"=HYPERLINK(\"x\")"`)
		}
		if err := db.Audit(context.Background(), rec); err != nil {
			t.Fatal(err)
		}
	}
}

// auditRows reads the trail through store.FindAudit and returns, as
// export cells, the records keep selects.
func auditRows(t *testing.T, db *store.DB, neutralise bool, keep func(*store.AuditRecord) bool) [][]string {
	t.Helper()
	n := func(s string) string {
		if neutralise {
			return Neutralise(s)
		}
		return s
	}
	var out [][]string
	err := db.FindAudit(context.Background(), store.AuditFilter{}, func(a *store.AuditRecord) error {
		if keep(a) {
			out = append(out, []string{strconv.FormatInt(a.Seq, 10), a.At.In(shanghai).Format("2006-01-02T15:04:05.000Z07:00"),
				n(string(a.Actor)), n(a.Action), n(a.Subject), n(string(a.Detail)), hex.EncodeToString(a.Hash), a.Appliance})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// sameJSON says whether the JSON value got is the stored detail text
// want: equal values, null for an empty detail.
func sameJSON(t *testing.T, got json.RawMessage, want string) bool {
	t.Helper()
	if want == "" {
		return string(got) == "null"
	}
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		return false
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("stored detail %q: %v", want, err)
	}
	return reflect.DeepEqual(g, w)
}

var auditHeader = []string{"seq", "time", "actor", "action", "subject", "detail", "hash", "appliance"}

func all(*store.AuditRecord) bool { return true }

func TestAuditRoundTrip(t *testing.T) {
	db := openDB(t)
	appendAudit(t, db, 40)
	r := request(KindAudit, CSV)

	got := readCSV(t, run(t, db, r))
	want := auditRows(t, db, true, all)
	if len(want) != 40 {
		t.Fatalf("%d records in the trail, want 40", len(want))
	}
	equalRows(t, got, append([][]string{auditHeader}, want...))
	// Spot checks that do not go through the helper's own conversion.
	if got[1][4] != "'=1+1" || !strings.Contains(got[2][5], "密接者，居家隔离") || got[2][2] != "'=admin" || got[1][5] != "" {
		t.Errorf("CSV rows %q / %q", got[1], got[2])
	}

	r.Format = XLSX
	sheets := readXLSX(t, run(t, db, r))
	equalRows(t, sheets["audit"], append([][]string{auditHeader}, want...))

	r.Format = JSONL
	raw := auditRows(t, db, false, all)
	lines := strings.Split(strings.TrimSuffix(string(run(t, db, r)), "\n"), "\n")
	if len(lines) != len(raw) {
		t.Fatalf("%d lines, want %d", len(lines), len(raw))
	}
	for i, l := range lines {
		var rec struct {
			V                                             int
			Seq                                           int64
			Time, Actor, Action, Subject, Hash, Appliance string
			Detail                                        json.RawMessage
		}
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("line %d %q: %v", i, l, err)
		}
		// The detail is the stored JSON value itself, null when empty.
		detail := sameJSON(t, rec.Detail, raw[i][5])
		got := []string{strconv.FormatInt(rec.Seq, 10), rec.Time, rec.Actor, rec.Action, rec.Subject, raw[i][5], rec.Hash, rec.Appliance}
		if rec.V != SchemaVersion || !detail || strings.Join(got, "\x00") != strings.Join(raw[i], "\x00") {
			t.Errorf("line %d = %q (detail %s), want %q", i, got, rec.Detail, raw[i])
		}
	}
}

func TestAuditFilters(t *testing.T) {
	db := openDB(t)
	appendAudit(t, db, 60)
	r := request(KindAudit, CSV)
	r.From, r.To = day0.Add(10*time.Minute), day0.Add(45*time.Minute)
	inRange := func(a *store.AuditRecord) bool { return !a.At.Before(r.From) && a.At.Before(r.To) }
	want := auditRows(t, db, true, inRange)
	if len(want) != 35 {
		t.Fatalf("fixture: %d records in range, want 35", len(want))
	}
	equalRows(t, readCSV(t, run(t, db, r))[1:], want)

	// The reason filter is the action code for the audit trail.
	r.Reason = store.AuditPolicyChanged
	want = auditRows(t, db, true, func(a *store.AuditRecord) bool { return inRange(a) && a.Action == store.AuditPolicyChanged })
	if len(want) == 0 || len(want) == 35 {
		t.Fatalf("fixture: action filter selects %d", len(want))
	}
	equalRows(t, readCSV(t, run(t, db, r))[1:], want)

	// A known action with no records in range gives just the header.
	r.Reason = store.AuditPurge
	if rows := readCSV(t, run(t, db, r)); len(rows) != 1 {
		t.Errorf("purge filter: %d rows, want the header only", len(rows))
	}

	for name, mut := range map[string]func(*Request){
		"unknown action":     func(r *Request) { r.Reason = "登录" },
		"action with spaces": func(r *Request) { r.Reason = " login" },
		"source on audit":    func(r *Request) { r.Source = "南门" },
		"decision on audit":  func(r *Request) { r.Decision = "allow" },
	} {
		r := request(KindAudit, CSV)
		mut(r)
		if err := r.Validate(); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
}

// TestAuditExportAudited: exporting the trail is itself recorded, with
// the filter and the row count, and the trail still verifies.
func TestAuditExportAudited(t *testing.T) {
	db := openDB(t)
	ctx := context.Background()
	appendAudit(t, db, 5)
	r := request(KindAudit, JSONL)
	r.Reason = store.AuditLogin
	n, err := Run(ctx, db, new(strings.Builder), r, nil)
	if err != nil || n != 2 {
		t.Fatalf("Run = %d, %v; want 2 login records", n, err)
	}
	if err := Audit(ctx, db, "管理员", r, n); err != nil {
		t.Fatal(err)
	}
	var last store.AuditRecord
	if err := db.FindAudit(ctx, store.AuditFilter{Last: 1}, func(a *store.AuditRecord) error { last = *a; return nil }); err != nil {
		t.Fatal(err)
	}
	var d struct {
		Reason string
		Rows   int64
	}
	if err := json.Unmarshal(last.Detail, &d); err != nil || last.Action != store.AuditExport || last.Subject != "audit" ||
		last.Actor != "管理员" || d.Rows != n || d.Reason != store.AuditLogin {
		t.Errorf("last record %+v %s (%v)", last, last.Detail, err)
	}
	if k, err := db.VerifyAudit(ctx); err != nil || k != 6 {
		t.Errorf("verify: %d, %v", k, err)
	}
}

// TestAuditJSONLTyped reads an audit download as a generic JSON reader
// does: seq is a number, detail an object, and text is not HTML-escaped,
// also for a record whose stored detail is (as older versions wrote it).
func TestAuditJSONLTyped(t *testing.T) {
	db := openDB(t)
	ctx := context.Background()
	for _, d := range []json.RawMessage{
		store.AuditDetail(map[string]any{"reason": "<b>密接</b> & 隔离", "n": 12345678901}),
		json.RawMessage(`{"reason":"\u003cscript\u003e \u0026","n":1}`),
	} {
		if err := db.Audit(ctx, &store.AuditRecord{At: day0, Actor: "管理员", Action: store.AuditPolicyChanged, Subject: "ab", Detail: d}); err != nil {
			t.Fatal(err)
		}
	}
	out := run(t, db, request(KindAudit, JSONL))
	if bytes.Contains(out, []byte(`\u003c`)) || bytes.Contains(out, []byte(`\u0026`)) {
		t.Errorf("HTML-escaped text in %s", out)
	}
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines, want 2", len(lines))
	}
	wantReason := []string{"<b>密接</b> & 隔离", "<script> &"}
	for i, l := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("line %d: %v", i, err)
		}
		seq, ok := rec["seq"].(float64)
		if !ok || seq < 1 {
			t.Errorf("line %d: seq %T %v, want a number", i, rec["seq"], rec["seq"])
		}
		detail, ok := rec["detail"].(map[string]any)
		if !ok {
			t.Fatalf("line %d: detail %T %v, want an object", i, rec["detail"], rec["detail"])
		}
		if detail["reason"] != wantReason[i] {
			t.Errorf("line %d: reason %q, want %q", i, detail["reason"], wantReason[i])
		}
	}
	if !strings.Contains(lines[0], `"n":12345678901`) {
		t.Errorf("a large number lost its digits: %s", lines[0])
	}
}
