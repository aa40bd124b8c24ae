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
	app := MustEnrolDB(t, t.TempDir(), "gate-a")
	hub := MustOpenDB(t)
	id := MustHubAppliance(t, hub, "gate-a")

	push := func() {
		t.Helper()
		b, err := app.NextPush(ctxb(), 100, 100)
		if err != nil {
			t.Fatal(err)
		}
		if b.Events == nil {
			t.Fatal("nothing to push")
		}
		if _, err := hub.IngestPush(ctxb(), id, &store.Ingest{ApplianceNow: app.Now(), Events: b.Events}); err != nil {
			t.Fatal(err)
		}
		if _, err := app.AckPush(ctxb(), nil, &store.PushAck{Epoch: b.Events.Epoch, Mark: b.Events.Records[len(b.Events.Records)-1].Seq, Sent: b.Events.Records[len(b.Events.Records)-1].Seq}); err != nil {
			t.Fatal(err)
		}
	}

	p := MustSavePerson(t, app, 9) // registered at the appliance: its first status
	if _, err := hub.FindPerson(ctxb(), p.Subject); err == nil {
		t.Fatal("the hub knows the person before any push")
	}
	push()
	got, err := hub.FindPerson(ctxb(), p.Subject)
	if err != nil {
		t.Fatal(err)
	}
	if got.MaskedName != "张*明" || got.IDTail != "123X" || got.Color != pass.Green || got.Doses != 3 || !got.TestedAt.Equal(p.TestedAt) {
		t.Fatalf("person at the hub: %+v", got)
	}

	// A later change at the appliance moves the colour at the hub.
	app.Now = func() time.Time { return t0.Add(time.Hour) }
	if _, err := app.SetStatus(ctxb(), p.Subject, pass.Yellow, "close contact", "desk"); err != nil {
		t.Fatal(err)
	}
	push()
	if got, _ := hub.FindPerson(ctxb(), p.Subject); got.Color != pass.Yellow {
		t.Fatalf("colour at the hub after a change at the appliance: %v", got.Color)
	}

	// The hub's admin changes it (possible now that the hub knows the
	// person), later than anything the appliance did.
	hub.Now = func() time.Time { return t0.Add(3 * time.Hour) }
	if _, err := hub.SetStatus(ctxb(), p.Subject, pass.Red, "positive test", "district-admin"); err != nil {
		t.Fatal(err)
	}
	// An older change arriving late does not undo it.
	app.Now = func() time.Time { return t0.Add(2 * time.Hour) }
	if _, err := app.SetStatus(ctxb(), p.Subject, pass.Green, "cleared", "desk"); err != nil {
		t.Fatal(err)
	}
	push()
	if got, _ := hub.FindPerson(ctxb(), p.Subject); got.Color != pass.Red {
		t.Fatalf("an older change from the appliance overrode the hub's: %v", got.Color)
	}
}
