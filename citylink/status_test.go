package citylink_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"passgate/citylink"
	"passgate/internal/natstest"
	"passgate/pass"
	"passgate/store"
)

func sampleStatus() *store.CityStatus {
	var s pass.Subject
	for i := range s {
		s[i] = byte(i + 1)
	}
	return &store.CityStatus{ID: strings.Repeat("ab", 16), Asker: "officer.wang", Subject: s, Color: pass.Red,
		Reason: "密接 close contact", At: time.UnixMilli(1_780_000_000_000)}
}

func TestParseStatus_RoundTrip(t *testing.T) {
	c := sampleStatus()
	b, err := citylink.EncodeStatus(c)
	if err != nil {
		t.Fatal(err)
	}
	got, err := citylink.ParseStatus(b)
	if err != nil || *got != *c {
		t.Fatalf("%+v %v, want %+v", got, err, c)
	}
}

// Anything but a message the console writes is refused.
func TestParseStatus_Hostile(t *testing.T) {
	good, err := citylink.EncodeStatus(sampleStatus())
	if err != nil {
		t.Fatal(err)
	}
	subj := hex.EncodeToString(sampleStatus().Subject[:])
	with := func(old, new string) string { return strings.Replace(string(good), old, new, 1) }
	for name, msg := range map[string]string{
		"empty":          "",
		"not an object":  "[]",
		"unknown field":  with(`"v":1`, `"v":1,"district":"D1"`),
		"trailing data":  string(good) + "{}",
		"version":        with(`"v":1`, `"v":2`),
		"short id":       with(`"id":"abab`, `"id":"ab`),
		"upper-case id":  with(`"id":"abab`, `"id":"ABab`),
		"asker":          with(`"officer.wang"`, `"officer wang"`),
		"empty asker":    with(`"officer.wang"`, `""`),
		"short subject":  with(subj, subj[2:]),
		"upper subject":  with(subj, strings.ToUpper(subj)),
		"zero subject":   with(subj, strings.Repeat("0", 32)),
		"colour":         with(`"red"`, `"purple"`),
		"colour case":    with(`"red"`, `"Red"`),
		"empty reason":   with(`"密接 close contact"`, `""`),
		"control reason": with(`"密接 close contact"`, `"a\u001b[2Jb"`),
		"long reason":    with(`"密接 close contact"`, `"`+strings.Repeat("x", 501)+`"`),
		"zero time":      with(`"at_ms":1780000000000`, `"at_ms":0`),
		"negative time":  with(`"at_ms":1780000000000`, `"at_ms":-5`),
		"huge time":      with(`"at_ms":1780000000000`, `"at_ms":9007199254740993`),
		"oversize":       with(`"v":1`, `"v":1`+strings.Repeat(" ", citylink.MaxStatusMessage)),
	} {
		if c, err := citylink.ParseStatus([]byte(msg)); err == nil {
			t.Errorf("%s: accepted %+v", name, c)
		}
	}
}

func FuzzParseStatus(f *testing.F) {
	good, _ := citylink.EncodeStatus(sampleStatus())
	f.Add(good)
	f.Add([]byte(`{"v":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := citylink.ParseStatus(b)
		if err != nil {
			return
		}
		again, err := citylink.EncodeStatus(c)
		if err != nil {
			t.Fatalf("accepted %q, cannot write it: %v", b, err)
		}
		c2, err := citylink.ParseStatus(again)
		if err != nil || *c2 != *c {
			t.Fatalf("%q: %+v, again %+v %v", b, c, c2, err)
		}
	})
}

// statusAudits counts the city status changes audited as applied in db.
func statusAudits(t *testing.T, db *store.DB) int {
	t.Helper()
	n := 0
	err := db.FindAudit(context.Background(), store.AuditFilter{}, func(r *store.AuditRecord) error {
		if r.Action == store.AuditCityStatusApplied {
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// A status change the console publishes reaches every hub once: the hub
// that registered the person changes the person's colour (the history
// names the city officer) and voids their earlier passes; a hub that
// knows no one under the subject voids the subject's passes itself.
// Published again with the same id, it is applied no second time; a
// hostile message on the subject is refused and audited at both.
func TestLink_CityStatusChange(t *testing.T) {
	c, h1, h2 := twoHubs(t)
	ctx := context.Background()
	ch := sampleStatus()
	ch.At = time.Now()
	if err := h1.db.SavePerson(ctx, &store.Person{Subject: ch.Subject, MaskedName: "张*", IDTail: "1233", Color: pass.Green}, "issuer"); err != nil {
		t.Fatal(err)
	}
	before := time.Now().Add(-time.Second) // a pass issued before the change
	nc := consoleConn(t, c)
	seq, err := citylink.PublishStatus(ctx, nc, ch)
	if err != nil || seq == 0 {
		t.Fatalf("publish: %d %v", seq, err)
	}
	for _, h := range []*hub{h1, h2} {
		deadline := time.Now().Add(20 * time.Second)
		for statusAudits(t, h.db) == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("%s: the status change did not arrive", h.id)
			}
			time.Sleep(50 * time.Millisecond)
		}
		cut, err := h.db.SubjectCutoff(ctx, ch.Subject)
		if err != nil || !cut.After(before) {
			t.Fatalf("%s: passes of the subject voided before %v (%v), want after %v", h.id, cut, err, before)
		}
	}
	p, err := h1.db.FindPerson(ctx, ch.Subject)
	if err != nil || p.Color != pass.Red {
		t.Fatalf("person at the registering hub: %+v %v", p, err)
	}
	hist, err := h1.db.StatusHistory(ctx, ch.Subject)
	if err != nil || len(hist) == 0 || hist[len(hist)-1].Actor != "city:officer.wang" || hist[len(hist)-1].Reason != ch.Reason {
		t.Fatalf("history %+v %v", hist, err)
	}
	// The same change again (a console retrying): dropped by the stream.
	if _, err := citylink.PublishStatus(ctx, nc, ch); err != nil {
		t.Fatal(err)
	}
	// Hostile messages on the console's subject, sent by the
	// administrator (the only other user allowed to).
	js, err := jetstream.New(c.Connect(c.AdminSeedFile()))
	if err != nil {
		t.Fatal(err)
	}
	bad := bytes.Replace(mustEncode(t, ch), []byte(`"red"`), []byte(`"purple"`), 1)
	if _, err := js.Publish(ctx, citylink.StatusSubject, bad); err != nil {
		t.Fatal(err)
	}
	for _, h := range []*hub{h1, h2} {
		deadline := time.Now().Add(20 * time.Second)
		for len(refusals(t, h.db)) == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("%s: the hostile status change was not refused", h.id)
			}
			time.Sleep(50 * time.Millisecond)
		}
		if n := statusAudits(t, h.db); n != 1 {
			t.Fatalf("%s: the status change applied %d times", h.id, n)
		}
	}
	hist2, _ := h1.db.StatusHistory(ctx, ch.Subject)
	if len(hist2) != len(hist) {
		t.Fatalf("the status history grew from %d to %d", len(hist), len(hist2))
	}
}

// A hub's own user may not publish a city-wide status change.
func TestLink_HubCannotChangeCityStatus(t *testing.T) {
	c := natstest.Start(t, "Dhub0001")
	errs := make(chan error, 4)
	nc := c.Connect(c.SeedFile("Dhub0001"), nats.CustomInboxPrefix(citylink.InboxPrefix("Dhub0001")),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { errs <- err }))
	if err := nc.Publish(citylink.StatusSubject, mustEncode(t, sampleStatus())); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errs:
		if !strings.Contains(err.Error(), "Permissions Violation") {
			t.Fatalf("got %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a hub's user published a city-wide status change")
	}
	info, err := c.Stream().Info(context.Background())
	if err != nil || info.State.Msgs != 0 {
		t.Fatalf("stream %+v %v", info, err)
	}
}

func mustEncode(t *testing.T, c *store.CityStatus) []byte {
	t.Helper()
	b, err := citylink.EncodeStatus(c)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
