package store_test

import (
	"testing"
	"time"

	"passgate/pass"
	"passgate/store"
)

// A person registered at an appliance becomes known at the hub through
// the status change it pushes (masked name, ID tail, never the ID
// number), so the hub's admins can change their status; a change the hub
// already has a later one for does not undo it.
func TestDB_HubLearnsPeople(t *testing.T) {
	t.Parallel()
	app := MustEnrolDB(t, t.TempDir(), "gate-a")
	hub := MustOpenDB(t)
	id := MustHubAppliance(t, hub, "gate-a")

	push := func() {
		t.Helper()
		b, err := app.NextPush(t.Context(), 100, 100)
		if err != nil {
			t.Fatal(err)
		}
		if b.Events == nil {
			t.Fatal("nothing to push")
		}
		if _, err := hub.IngestPush(t.Context(), id, &store.Ingest{ApplianceNow: app.Now(), Events: b.Events}); err != nil {
			t.Fatal(err)
		}
		if _, err := app.AckPush(t.Context(), nil, &store.PushAck{Epoch: b.Events.Epoch, Mark: b.Events.Records[len(b.Events.Records)-1].Seq, Sent: b.Events.Records[len(b.Events.Records)-1].Seq}); err != nil {
			t.Fatal(err)
		}
	}

	p := MustSavePerson(t, app, 9) // registered at the appliance: its first status
	if _, err := hub.FindPerson(t.Context(), p.Subject); err == nil {
		t.Fatal("the hub knows the person before any push")
	}
	push()
	got, err := hub.FindPerson(t.Context(), p.Subject)
	if err != nil {
		t.Fatal(err)
	}
	if got.MaskedName != "张*明" || got.IDTail != "123X" || got.Color != pass.Green || got.Doses != 3 || !got.TestedAt.Equal(p.TestedAt) {
		t.Fatalf("person at the hub: %+v", got)
	}

	// A later change at the appliance moves the colour at the hub.
	app.Now = func() time.Time { return t0.Add(time.Hour) }
	if _, err := app.SetStatus(t.Context(), p.Subject, pass.Yellow, "close contact", "desk"); err != nil {
		t.Fatal(err)
	}
	push()
	if got, _ := hub.FindPerson(t.Context(), p.Subject); got.Color != pass.Yellow {
		t.Fatalf("colour at the hub after a change at the appliance: %v", got.Color)
	}

	// The hub's admin changes it (possible now that the hub knows the
	// person), later than anything the appliance did.
	hub.Now = func() time.Time { return t0.Add(3 * time.Hour) }
	if _, err := hub.SetStatus(t.Context(), p.Subject, pass.Red, "positive test", "district-admin"); err != nil {
		t.Fatal(err)
	}
	// An older change arriving late does not undo it.
	app.Now = func() time.Time { return t0.Add(2 * time.Hour) }
	if _, err := app.SetStatus(t.Context(), p.Subject, pass.Green, "cleared", "desk"); err != nil {
		t.Fatal(err)
	}
	push()
	if got, _ := hub.FindPerson(t.Context(), p.Subject); got.Color != pass.Red {
		t.Fatalf("an older change from the appliance overrode the hub's: %v", got.Color)
	}
}

// A pull that brings nothing new is recorded at most every 30 s: an idle
// appliance's pulls every 2 s do not take the scan log's writer.
func TestDB_ApplyFeedEmptyThrottled(t *testing.T) {
	t.Parallel()
	db := MustEnrolDB(t, t.TempDir(), "gate-a")
	clock := t0.Add(time.Hour)
	db.Now = func() time.Time { return clock }
	pulled := func() time.Time {
		t.Helper()
		st, err := db.FeedState(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return st.LastPull
	}
	if _, err := db.ApplyFeed(t.Context(), &store.Feed{}); err != nil {
		t.Fatal(err)
	}
	first := pulled()
	if !first.Equal(clock) {
		t.Fatalf("first pull recorded at %v, want %v", first, clock)
	}
	clock = clock.Add(10 * time.Second)
	if _, err := db.ApplyFeed(t.Context(), &store.Feed{}); err != nil {
		t.Fatal(err)
	}
	if got := pulled(); !got.Equal(first) {
		t.Fatalf("an empty pull 10 s later was recorded: %v", got)
	}
	// Something new is always applied and recorded.
	clock = clock.Add(time.Second)
	lost := passID(1)
	if _, err := db.ApplyFeed(t.Context(), &store.Feed{RevocationsSeq: 1, Revocations: []*store.Revocation{
		{Seq: 1, Kind: store.RevokePass, Target: lost[:], Reason: "lost", At: clock}}}); err != nil {
		t.Fatal(err)
	}
	if got := pulled(); !got.Equal(clock) {
		t.Fatalf("a pull with a revocation recorded at %v, want %v", got, clock)
	}
	clock = clock.Add(31 * time.Second)
	if _, err := db.ApplyFeed(t.Context(), &store.Feed{}); err != nil {
		t.Fatal(err)
	}
	if got := pulled(); !got.Equal(clock) {
		t.Fatalf("an empty pull 31 s later recorded at %v, want %v", got, clock)
	}
}
