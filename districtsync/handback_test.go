package districtsync

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"passgate/check"
	"passgate/district"
	"passgate/pass"
	"passgate/store"
)

// A hub restored from an older backup while its gates check and push:
// the revocations it made after the backup (a person coded red, a pass
// revoked, an office retired and its key revoked) come back to it from
// the gates, once each and with their own time; every gate goes on
// denying them, a gate enrolled after the restore denies them too, and
// the hub's desk does not issue the red-coded person a pass from its
// out-of-date register.
func TestHubRestore_TakesBackLostRevocations(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	h := newEnrHub(t)
	issue := func(db *store.DB, name, id string) *district.Issued {
		t.Helper()
		p, err := district.Issue(ctx, db, district.IssueRequest{Name: name, IDNumber: id,
			TestedAt: time.Now().Add(-time.Hour), Doses: 2, Actor: "desk"})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	office := enrolled(t, h, "office-1", true)
	if _, err := PullOnce(ctx, office, clientOf(t, office)); err != nil {
		t.Fatal(err)
	}
	red, lost, fine := issue(h.db, "张三明", "610113199001011230"), issue(h.db, "李四", "P1234567"), issue(h.db, "赵六", "P1111111")
	byOffice := issue(office, "钱七", "P2222222")
	officeKey, err := office.SigningKey(ctx)
	if err != nil {
		t.Fatal(err)
	}

	gates, load := startRestoreGates(t, ctx, h, fine)
	defer load.Wait()
	defer cancel()
	waitDenied(t, gates, byOffice, "") // the office's key arrived
	backup := filepath.Join(t.TempDir(), "hub.db")
	if err := h.db.Backup(ctx, backup); err != nil {
		t.Fatal(err)
	}
	before, err := h.db.RevocationsSince(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}

	if _, err := district.SetStatus(ctx, h.db, "610113199001011230", pass.Red, "positive", "hubadmin"); err != nil {
		t.Fatal(err)
	}
	if err := h.db.CreateRevocation(ctx, &store.Revocation{Kind: store.RevokePass, Target: lost.Claims.ID[:], Reason: "lost"}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.db.RetireAppliance(ctx, "office-1", "stolen", "hubadmin"); err != nil {
		t.Fatal(err)
	}
	waitDenied(t, gates, red, check.ReasonRevoked)
	waitDenied(t, gates, lost, check.ReasonRevoked)
	waitDenied(t, gates, byOffice, check.ReasonIssuerRevoked)
	last := int64(0)
	if len(before) > 0 {
		last = before[len(before)-1].Seq
	}
	made, err := h.db.RevocationsSince(ctx, last)
	if err != nil || len(made) != 3 {
		t.Fatalf("revocations made after the backup: %d, %v", len(made), err)
	}

	h.reopen(t, backup)
	// The hub lists them again, each once, with its own time.
	deadline := time.Now().Add(20 * time.Second)
	for {
		held, err := h.db.RevocationsSince(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		missing := 0
		for _, m := range made {
			n := 0
			for _, r := range held {
				if r.Kind == m.Kind && bytes.Equal(r.Target, m.Target) && r.Before.Equal(m.Before) {
					n++
					if !r.At.Equal(m.At) || r.Reason != m.Reason {
						t.Errorf("revocation %x taken back as %v %q, made %v %q", m.Target, r.At, r.Reason, m.At, m.Reason)
					}
				}
			}
			if n > 1 {
				t.Fatalf("revocation %x held %d times at the hub", m.Target, n)
			}
			if n == 0 {
				missing++
			}
		}
		if missing == 0 {
			if len(held) != len(before)+len(made) {
				t.Fatalf("hub holds %d revocations, want %d", len(held), len(before)+len(made))
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the restore the hub still lacks %d of the %d revocations made after its backup", missing, len(made))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if n := auditCount(t, h.db, store.AuditRevocationsRestored); n == 0 {
		t.Error("no audit record of the revocations taken back")
	}
	if n := auditCount(t, h.db, store.AuditRestoreRefused); n != 0 {
		t.Errorf("%d refusals of what honest gates handed back", n)
	}
	keys, err := h.db.FindKeys(ctx, store.KeyFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if k.KID == officeKey.KID && k.RevokedAt.IsZero() {
			t.Error("the retired office's key is not revoked again at the hub")
		}
	}

	// Every gate still denies them; one enrolled after the restore too.
	for _, p := range []*district.Issued{red, lost} {
		waitDenied(t, gates, p, check.ReasonRevoked)
	}
	waitDenied(t, gates, byOffice, check.ReasonIssuerRevoked)
	late := enrolled(t, h, "gate-late", false)
	if _, err := PullOnce(ctx, late, clientOf(t, late)); err != nil {
		t.Fatal(err)
	}
	chk, err := check.New(ctx, check.Config{DB: late})
	if err != nil {
		t.Fatal(err)
	}
	defer chk.Close()
	for _, c := range []struct {
		p    *district.Issued
		want check.Reason
	}{{red, check.ReasonRevoked}, {lost, check.ReasonRevoked}, {byOffice, check.ReasonIssuerRevoked}, {fine, check.ReasonOK}} {
		if d := chk.Evaluate(c.p.Text, time.Now()); d.Reason != c.want {
			t.Errorf("gate enrolled after the restore: %s gives %s, want %s", c.p.Person.MaskedName, d.Reason, c.want)
		}
	}

	// The hub's register still says green (the status change is not
	// handed back): its desk refuses to issue from it.
	_, err = district.Issue(ctx, h.db, district.IssueRequest{Name: "张三明", IDNumber: "610113199001011230", Doses: -1, Actor: "desk"})
	var elsewhere *district.StatusElsewhereError
	if !errors.As(err, &elsewhere) {
		t.Errorf("hub desk issued to a person whose red code was taken back: %v", err)
	}
}

// restoreFixture is a hub restored from a backup with a gate enrolled
// before: lost holds the hub's feed records (tagged) of revocations made
// after the backup, held one of a revocation made before it.
type restoreFixture struct {
	h    *enrHub
	gate *Client
	gen  []byte
	lost []RevocationRecord
	held RevocationRecord
}

func newRestoreFixture(t *testing.T) *restoreFixture {
	t.Helper()
	ctx := t.Context()
	f := &restoreFixture{h: newEnrHub(t)}
	revoke := func(id byte, reason string) {
		t.Helper()
		if err := f.h.db.CreateRevocation(ctx, &store.Revocation{Kind: store.RevokePass, Target: bytes.Repeat([]byte{id}, 12), Reason: reason}); err != nil {
			t.Fatal(err)
		}
	}
	revoke(1, "before the backup")
	gate := enrolled(t, f.h, "gate-1", false)
	f.gate = clientOf(t, gate)
	backup := filepath.Join(t.TempDir(), "hub.db")
	if err := f.h.db.Backup(ctx, backup); err != nil {
		t.Fatal(err)
	}
	revoke(2, "after the backup")
	revoke(3, "after the backup too")
	subject := pass.Subject{9, 9, 9}
	if err := f.h.db.CreateRevocation(ctx, &store.Revocation{Kind: store.RevokeSubject, Target: subject[:], Reason: "red"}); err != nil {
		t.Fatal(err)
	}
	page, _, err := f.h.db.RevocationsPage(ctx, 0, 100)
	if err != nil || len(page) != 4 {
		t.Fatalf("hub feed: %d records, %v", len(page), err)
	}
	for i, r := range page {
		w := RevocationToWire(r)
		w.ID = r.ID
		if len(w.Tag) != store.RevocationTagSize {
			t.Fatalf("feed record %d carries a tag of %d bytes", i, len(w.Tag))
		}
		if i == 0 {
			f.held = w
		} else {
			f.lost = append(f.lost, w)
		}
	}
	f.h.reopen(t, backup)
	if f.gen, _, err = f.h.db.FeedGeneration(ctx); err != nil {
		t.Fatal(err)
	}
	return f
}

// send hands recs back to the hub as the gate, in the hub's generation.
func (f *restoreFixture) send(t *testing.T, recs ...RevocationRecord) (*RestoreResponse, error) {
	t.Helper()
	var resp RestoreResponse
	err := f.gate.Call(t.Context(), PathRestore, &RestoreRequest{Generation: f.gen, Revocations: recs}, &resp)
	return &resp, err
}

// hubHolds counts the revocations the hub holds.
func (f *restoreFixture) hubHolds(t *testing.T) int {
	t.Helper()
	revs, err := f.h.db.RevocationsSince(t.Context(), 0)
	if err != nil {
		t.Fatal(err)
	}
	return len(revs)
}

// Every hand-back the hub must not take: refused, nothing stored, and
// each refusal of a record or a request in the audit trail.
func TestRestore_Refusals(t *testing.T) {
	t.Parallel()
	altered := func(change func(*RevocationRecord)) func(*restoreFixture) []RevocationRecord {
		return func(f *restoreFixture) []RevocationRecord {
			r := f.lost[0]
			r.Tag = bytes.Clone(r.Tag)
			change(&r)
			return []RevocationRecord{r}
		}
	}
	tests := []struct {
		name    string
		recs    func(*restoreFixture) []RevocationRecord
		want    store.RestoreRefusal
		dropped bool // the appliance is told not to hand it back again
	}{
		{"untagged", altered(func(r *RevocationRecord) { r.Tag = nil }), store.RefuseRestoreUntagged, true},
		{"tag cut short", altered(func(r *RevocationRecord) { r.Tag = r.Tag[:8] }), store.RefuseRestoreMalformed, true},
		{"tag with a bit flipped", altered(func(r *RevocationRecord) { r.Tag[0] ^= 1 }), store.RefuseRestoreForged, true},
		{"reason changed", altered(func(r *RevocationRecord) { r.Reason = "mine" }), store.RefuseRestoreForged, true},
		{"target changed", altered(func(r *RevocationRecord) { r.Target = bytes.Repeat([]byte{7}, 12) }), store.RefuseRestoreForged, true},
		{"identity changed", altered(func(r *RevocationRecord) { r.ID++ }), store.RefuseRestoreForged, true},
		{"time changed", altered(func(r *RevocationRecord) { r.At-- }), store.RefuseRestoreForged, true},
		{"kind changed", altered(func(r *RevocationRecord) { r.Kind, r.Target = 3, r.Target[:8] }), store.RefuseRestoreForged, true},
		{"target of the wrong size", altered(func(r *RevocationRecord) { r.Target = r.Target[:5] }), store.RefuseRestoreMalformed, true},
		{"no time", altered(func(r *RevocationRecord) { r.At = 0 }), store.RefuseRestoreMalformed, true},
		{"negative identity", altered(func(r *RevocationRecord) { r.ID, r.Seq = -5, -5 }), store.RefuseRestoreMalformed, true},
		{"unknown kind", altered(func(r *RevocationRecord) { r.Kind = 9 }), store.RefuseRestoreMalformed, true},
		{"pass revocation with a cut-off", altered(func(r *RevocationRecord) { r.Before = r.At }), store.RefuseRestoreMalformed, true},
		{"reason too long", altered(func(r *RevocationRecord) { r.Reason = string(bytes.Repeat([]byte("x"), 501)) }), store.RefuseRestoreMalformed, true},
		{"replay of a record the hub holds", func(f *restoreFixture) []RevocationRecord { return []RevocationRecord{f.held} }, store.RefuseRestoreReplay, false},
		{"another district's record", func(f *restoreFixture) []RevocationRecord {
			other := newRestoreFixture(t)
			return other.lost[:1]
		}, store.RefuseRestoreForged, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newRestoreFixture(t)
			recs := tt.recs(f)
			holds := f.hubHolds(t)
			resp, err := f.send(t, recs...)
			if err != nil {
				t.Fatal(err)
			}
			if resp.Restored != 0 || resp.Refused != len(recs) {
				t.Errorf("answer %+v, want %d refused", resp, len(recs))
			}
			if got := slices.Contains(resp.Dropped, recs[0].ID); got != tt.dropped && recs[0].ID > 0 {
				t.Errorf("dropped %v, want %d dropped: %v", resp.Dropped, recs[0].ID, tt.dropped)
			}
			if n := f.hubHolds(t); n != holds {
				t.Errorf("the hub holds %d revocations, %d before", n, holds)
			}
			why := refusalsAudited(t, f.h.db)
			if why[string(tt.want)] != len(recs) || len(why) != 1 {
				t.Errorf("audited refusals %v, want %d %s", why, len(recs), tt.want)
			}
			if n := auditCount(t, f.h.db, store.AuditRevocationsRestored); n != 0 {
				t.Errorf("%d records of revocations restored", n)
			}
		})
	}
}

// refusalsAudited sums the reasons of the hub's restore refusals.
func refusalsAudited(t *testing.T, db *store.DB) map[string]int {
	t.Helper()
	why := map[string]int{}
	if err := db.FindAudit(t.Context(), store.AuditFilter{}, func(r *store.AuditRecord) error {
		if r.Action != store.AuditRestoreRefused {
			return nil
		}
		var d struct {
			Why any `json:"why"`
		}
		if err := json.Unmarshal(r.Detail, &d); err != nil {
			return err
		}
		switch w := d.Why.(type) {
		case string:
			why[w]++
		case map[string]any:
			for k, n := range w {
				why[k] += int(n.(float64))
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return why
}

// Genuine records the hub lost are taken back once each, whoever hands
// them back and however often, with their own time and identity; the
// feed carries them again under that identity and a new number.
func TestRestore_TakesBackOnce(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	f := newRestoreFixture(t)
	holds := f.hubHolds(t)
	resp, err := f.send(t, append(f.lost, f.lost[0])...) // one twice in the same call
	if err != nil {
		t.Fatal(err)
	}
	if resp.Restored != len(f.lost) || resp.Held != 1 || resp.Refused != 0 || len(resp.Dropped) != 0 {
		t.Fatalf("answer %+v, want %d restored and 1 held", resp, len(f.lost))
	}
	// Again, from another gate: held, nothing stored.
	other := enrolled(t, f.h, "gate-2", false)
	var again RestoreResponse
	if err := clientOf(t, other).Call(ctx, PathRestore, &RestoreRequest{Generation: f.gen, Revocations: f.lost}, &again); err != nil {
		t.Fatal(err)
	}
	if again.Restored != 0 || again.Held != len(f.lost) || again.Refused != 0 {
		t.Fatalf("second hand-back answered %+v", again)
	}
	if n := f.hubHolds(t); n != holds+len(f.lost) {
		t.Fatalf("hub holds %d revocations, want %d", n, holds+len(f.lost))
	}
	if n := auditCount(t, f.h.db, store.AuditRevocationsRestored); n != 1 {
		t.Errorf("%d audit records of revocations restored, want 1", n)
	}
	page, _, err := f.h.db.RevocationsPage(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range f.lost {
		found := false
		for _, r := range page {
			if r.ID != l.ID {
				continue
			}
			found = true
			w := RevocationToWire(r)
			if r.Seq == l.Seq || w.ID != l.ID || w.At != l.At || w.Before != l.Before || w.Reason != l.Reason || !bytes.Equal(w.Tag, l.Tag) {
				t.Errorf("taken back as %+v, was %+v", w, l)
			}
		}
		if !found {
			t.Errorf("revocation %d not in the hub's feed", l.ID)
		}
	}
}

// A subject revocation whose cut-off lies before one the hub made since
// voids nothing more: not stored, and the appliance need not hand it back
// again.
func TestRestore_SupersededNotStored(t *testing.T) {
	t.Parallel()
	f := newRestoreFixture(t)
	subj := f.lost[len(f.lost)-1]
	if subj.Kind != int(store.RevokeSubject) {
		t.Fatalf("fixture's last record is of kind %d", subj.Kind)
	}
	later := &store.Revocation{Kind: store.RevokeSubject, Target: subj.Target, Before: time.UnixMilli(subj.Before).Add(time.Hour), Reason: "green again"}
	if err := f.h.db.CreateRevocation(t.Context(), later); err != nil {
		t.Fatal(err)
	}
	holds := f.hubHolds(t)
	resp, err := f.send(t, subj)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Superseded != 1 || resp.Restored != 0 || !slices.Equal(resp.Dropped, []int64{subj.ID}) {
		t.Fatalf("answer %+v", resp)
	}
	if n := f.hubHolds(t); n != holds {
		t.Errorf("hub holds %d revocations, %d before", n, holds)
	}
}

// Requests refused whole: the hub reads nothing of a sender it does not
// know, and audits every malformed request of one it knows.
func TestRestore_RequestRefusals(t *testing.T) {
	t.Parallel()
	gz := func(b []byte) []byte {
		var buf bytes.Buffer
		if err := encodeGzipRaw(&buf, b); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	tests := []struct {
		name    string
		call    func(f *restoreFixture) error
		status  int
		audited bool
	}{
		{"not JSON", func(f *restoreFixture) error {
			return f.gate.callBody(t.Context(), PathRestore, gz([]byte("{not json")), &RestoreResponse{})
		}, http.StatusBadRequest, true},
		{"trailing data", func(f *restoreFixture) error {
			return f.gate.callBody(t.Context(), PathRestore, gz([]byte(`{"generation":"","revocations":[]} {}`)), &RestoreResponse{})
		}, http.StatusBadRequest, true},
		{"no records", func(f *restoreFixture) error { _, err := f.send(t); return err }, http.StatusBadRequest, true},
		{"too many records", func(f *restoreFixture) error {
			_, err := f.send(t, slices.Repeat(f.lost[:1], store.MaxRestoreBatch+1)...)
			return err
		}, http.StatusBadRequest, true},
		{"too large once decompressed", func(f *restoreFixture) error {
			body := append(append([]byte(`{"reason":"`), bytes.Repeat([]byte("x"), maxRestorePlain+1)...), `"}`...)
			return f.gate.callBody(t.Context(), PathRestore, gz(body), &RestoreResponse{})
		}, http.StatusRequestEntityTooLarge, true},
		{"generation of the wrong size", func(f *restoreFixture) error {
			return f.gate.Call(t.Context(), PathRestore, &RestoreRequest{Generation: []byte{1}, Revocations: f.lost}, &RestoreResponse{})
		}, http.StatusBadRequest, true},
		{"another generation", func(f *restoreFixture) error {
			gen := bytes.Clone(f.gen)
			gen[0] ^= 1
			return f.gate.Call(t.Context(), PathRestore, &RestoreRequest{Generation: gen, Revocations: f.lost}, &RestoreResponse{})
		}, http.StatusConflict, false},
		{"no token", func(f *restoreFixture) error {
			c, err := NewClientCA(f.h.url, f.h.ca, nil)
			if err != nil {
				t.Fatal(err)
			}
			return c.Call(t.Context(), PathRestore, &RestoreRequest{Generation: f.gen, Revocations: f.lost}, &RestoreResponse{})
		}, http.StatusUnauthorized, false},
		{"retired appliance", func(f *restoreFixture) error {
			if _, err := f.h.db.RetireAppliance(t.Context(), "gate-1", "stolen", "hubadmin"); err != nil {
				t.Fatal(err)
			}
			_, err := f.send(t, f.lost...)
			return err
		}, http.StatusForbidden, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newRestoreFixture(t)
			holds := f.hubHolds(t)
			err := tt.call(f)
			var ce *CallError
			if !errors.As(err, &ce) || ce.Status != tt.status {
				t.Fatalf("answer %v, want status %d", err, tt.status)
			}
			if n := f.hubHolds(t); n != holds {
				t.Errorf("the hub holds %d revocations, %d before", n, holds)
			}
			why := refusalsAudited(t, f.h.db)
			if tt.audited != (why[string(store.RefuseRestoreRequest)] == 1) || len(why) > 1 {
				t.Errorf("audited refusals %v, want one malformed request: %v", why, tt.audited)
			}
		})
	}
}

// encodeGzipRaw gzips b as it is (a body no encoder would make).
func encodeGzipRaw(w *bytes.Buffer, b []byte) error {
	zw := gzip.NewWriter(w)
	if _, err := zw.Write(b); err != nil {
		return err
	}
	return zw.Close()
}

// FuzzReadRestore: whatever the body, reading a hand-back never panics,
// what it accepts is within its bounds, and the hub given it (a real
// one) answers without an internal error and takes back nothing, since
// no record of it carries a tag the hub made.
func FuzzReadRestore(f *testing.F) {
	gen := base64.StdEncoding.EncodeToString(make([]byte, store.GenerationSize))
	f.Add([]byte(`{"generation":"` + gen + `","revocations":[{"seq":5,"id":5,"kind":2,"target":"AQEBAQEBAQEBAQEB","reason":"lost","at_ms":1700000000000,"tag":"AAAAAAAAAAAAAAAAAAAAAA=="}]}`))
	f.Add([]byte(`{"generation":"` + gen + `","revocations":[{"seq":7,"kind":1,"target":"AQEBAQEBAQEBAQEBAQEBAQ==","before_ms":1,"reason":"","at_ms":2}]}`))
	f.Add([]byte(`{"generation":"` + gen + `","revocations":[{"seq":-1,"kind":3,"target":"AQEBAQEBAQE=","at_ms":-9,"tag":""}]}`))
	f.Add([]byte(`{"revocations":[]}`))
	f.Add([]byte(`[]`))
	ctx := context.Background()
	db, err := store.Open(ctx, f.TempDir())
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { db.Close() })
	if _, err := district.Setup(ctx, db, district.SetupOptions{Name: "Fuzz", Appliance: "hub", AdminPassword: "correct horse battery"}); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r := httptest.NewRequest(http.MethodPost, PathRestore, bytes.NewReader(b))
		req, recs, err := readRestore(r)
		if err != nil {
			var ce *CallError
			if !errors.As(err, &ce) || ce.Status/100 != 4 {
				t.Fatalf("refusal %v is not a client error", err)
			}
			return
		}
		if len(req.Generation) != store.GenerationSize || len(recs) == 0 || len(recs) > store.MaxRestoreBatch {
			t.Fatalf("accepted a request of %d records in a generation of %d bytes", len(recs), len(req.Generation))
		}
		res, err := db.RestoreRevocations(ctx, "fuzz", recs)
		if err != nil {
			t.Fatalf("hub: %v", err)
		}
		if res.Restored != 0 || res.Held != 0 || res.Superseded != 0 {
			t.Fatalf("took records no hub tagged: %+v", res)
		}
	})
}

// An appliance hands back only revocations it stored from the hub's
// feed and the feed no longer carries: never one it made itself (an
// office's status change), and nothing after a hub that merely restarted.
func TestReturnLost_OnlyTheHubsLostRecords(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	h := newEnrHub(t)
	office := enrolled(t, h, "office-1", true)
	c := clientOf(t, office)
	backup := filepath.Join(t.TempDir(), "hub.db")
	if err := h.db.Backup(ctx, backup); err != nil {
		t.Fatal(err)
	}
	hubMade := pass.ID{5, 5, 5}
	if err := h.db.CreateRevocation(ctx, &store.Revocation{Kind: store.RevokePass, Target: hubMade[:], Reason: "lost"}); err != nil {
		t.Fatal(err)
	}
	if _, err := district.Issue(ctx, office, district.IssueRequest{Name: "钱七", IDNumber: "P2222222", Actor: "desk"}); err != nil {
		t.Fatal(err)
	}
	if _, err := district.SetStatus(ctx, office, "P2222222", pass.Red, "positive", "desk"); err != nil {
		t.Fatal(err)
	}
	own, err := office.RevocationsSince(ctx, 0) // made here, before any pull
	if err != nil || len(own) == 0 {
		t.Fatalf("office's own revocations: %d, %v", len(own), err)
	}
	drain(t, office, c)
	if _, err := PullOnce(ctx, office, c); err != nil {
		t.Fatal(err)
	}

	// Restarted, not restored: the re-read feed carries everything held.
	h.reopen(t, "")
	if res, err := PullOnce(ctx, office, c); err != nil || !res.Reread || !res.AtEnd {
		t.Fatalf("pull after the restart: %+v, %v", res, err)
	}
	if list, _, err := office.HubRevocationsToReturn(ctx, 100); err != nil || len(list) != 0 {
		t.Fatalf("after a restart %d revocations to hand back (%v)", len(list), err)
	}

	h.reopen(t, backup)
	if _, err := PullOnce(ctx, office, c); err != nil {
		t.Fatal(err)
	}
	list, _, err := office.HubRevocationsToReturn(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	// The hub's own revocation, and the hub's copy of the office's
	// status change (its cut-off moved to the hub's clock), but never
	// the office's own record.
	found := false
	for _, r := range list {
		found = found || bytes.Equal(r.Target, hubMade[:])
		for _, o := range own {
			if r.Seq == o.Seq {
				t.Errorf("the office hands back its own revocation %d", o.Seq)
			}
		}
	}
	if !found {
		t.Fatalf("the hub's lost revocation is not among the %d to hand back", len(list))
	}
	res, err := ReturnLost(ctx, office, c)
	if err != nil || res.Sent != len(list) || res.Restored != len(list) {
		t.Fatalf("hand-back: %+v, %v", res, err)
	}
	// Settled: nothing more to hand back, even before the next pull.
	if res, err := ReturnLost(ctx, office, c); err != nil || res.Sent != 0 {
		t.Fatalf("second hand-back: %+v, %v", res, err)
	}
	if _, err := PullOnce(ctx, office, c); err != nil {
		t.Fatal(err)
	}
	if list, _, err := office.HubRevocationsToReturn(ctx, 100); err != nil || len(list) != 0 {
		t.Fatalf("after the hub took it back: %d to hand back (%v)", len(list), err)
	}
}
