package store_test

import (
	"errors"
	"testing"

	"passgate/store"
)

// upImportOf turns an appliance's prepared bundle into what the hub
// imports, as the hub package does after checking the signature.
func upImportOf(b *store.UpBundle) *store.UpImport {
	return &store.UpImport{Appliance: b.Appliance, Seq: b.Seq, Backlog: b.Backlog, Scans: b.Scans, Events: b.Events,
		RevocationsSeq: b.Feed.RevocationsSeq, PeerInSeq: b.InSeq}
}

func TestDB_PrepareUpBundle(t *testing.T) {
	t.Parallel()
	t.Run("OK", func(t *testing.T) {
		app := MustEnrolDB(t, t.TempDir(), "gate-a")
		logScans(t, app, "g", 25)
		b, err := app.PrepareUpBundle(t.Context(), 10, 10, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if b.Seq != 1 || b.Appliance != "gate-a" || b.District != "xa" || string(b.BundleKey) != "bundle-private" {
			t.Fatalf("bundle %d %q %q", b.Seq, b.Appliance, b.District)
		}
		// Runs of at most 10, consecutive, all the scans.
		if len(b.Scans) != 3 || len(b.Scans[0].Records) != 10 || len(b.Scans[2].Records) != 5 {
			t.Fatalf("%d scan runs", len(b.Scans))
		}
		if b.Scans[1].Records[0].ID != b.Scans[0].Records[9].ID+1 {
			t.Fatal("runs are not consecutive")
		}
		if b.Backlog != 0 {
			t.Fatalf("backlog %d", b.Backlog)
		}
		// The next one is numbered after it, and carries the same records:
		// nothing was acknowledged.
		b2, err := app.PrepareUpBundle(t.Context(), 10, 10, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if b2.Seq != 2 || b2.Records() != b.Records() {
			t.Fatalf("second bundle %d with %d records, want 2 with %d", b2.Seq, b2.Records(), b.Records())
		}
	})
	t.Run("Limit", func(t *testing.T) {
		app := MustEnrolDB(t, t.TempDir(), "gate-a")
		logScans(t, app, "g", 25)
		b, err := app.PrepareUpBundle(t.Context(), 10, 10, 12)
		if err != nil {
			t.Fatal(err)
		}
		if b.Records() != 12 || b.Backlog < 13 {
			t.Fatalf("%d records, backlog %d", b.Records(), b.Backlog)
		}
	})
	t.Run("ErrNotEnrolled", func(t *testing.T) {
		db := MustOpenDB(t)
		MustSetup(t, db)
		if _, err := db.PrepareUpBundle(t.Context(), 10, 10, 10); !errors.Is(err, store.ErrNotEnrolled) {
			t.Fatalf("got %v", err)
		}
	})
}

func TestDB_ImportUpBundle(t *testing.T) {
	t.Parallel()
	hub := MustOpenDB(t)
	MustHubAppliance(t, hub, "gate-a")
	key := []byte("bundle-public")
	app := MustEnrolDB(t, t.TempDir(), "gate-a")
	logScans(t, app, "g", 15)

	b1, err := app.PrepareUpBundle(t.Context(), 10, 10, 1000)
	if err != nil {
		t.Fatal(err)
	}
	res, err := hub.ImportUpBundle(t.Context(), upImportOf(b1), key)
	if err != nil {
		t.Fatal(err)
	}
	if res.Stored != b1.Records() || res.Skipped != 0 {
		t.Fatalf("stored %d, skipped %d", res.Stored, res.Skipped)
	}
	t.Run("ErrBundleReplayed", func(t *testing.T) {
		if _, err := hub.ImportUpBundle(t.Context(), upImportOf(b1), key); !errors.Is(err, store.ErrBundleReplayed) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("OverlapSkipped", func(t *testing.T) {
		logScans(t, app, "g", 2)
		b2, err := app.PrepareUpBundle(t.Context(), 10, 10, 1000)
		if err != nil {
			t.Fatal(err)
		}
		res, err := hub.ImportUpBundle(t.Context(), upImportOf(b2), key)
		if err != nil {
			t.Fatal(err)
		}
		if res.Stored != 2 || res.Skipped != b1.Records() {
			t.Fatalf("stored %d, skipped %d", res.Stored, res.Skipped)
		}
		if n := len(hubScans(t, hub, "gate-a")); n != 17 {
			t.Fatalf("hub holds %d scans, want 17", n)
		}
	})
	t.Run("ErrBundleForeign", func(t *testing.T) {
		in := upImportOf(b1)
		in.Seq, in.Appliance = 99, "gate-x"
		if _, err := hub.ImportUpBundle(t.Context(), in, key); !errors.Is(err, store.ErrBundleForeign) {
			t.Fatalf("unknown appliance: %v", err)
		}
		in.Appliance = "gate-a"
		if _, err := hub.ImportUpBundle(t.Context(), in, []byte("another key")); !errors.Is(err, store.ErrBundleForeign) {
			t.Fatalf("another key: %v", err)
		}
	})
	t.Run("Retired", func(t *testing.T) {
		if _, err := hub.RetireAppliance(t.Context(), "gate-a", "gone", "admin"); err != nil {
			t.Fatal(err)
		}
		// A final bundle is taken; everything in it is held already.
		in := upImportOf(b1)
		in.Seq = 100
		if res, err := hub.ImportUpBundle(t.Context(), in, key); err != nil || res.Stored != 0 {
			t.Fatalf("final bundle: %+v, %v", res, err)
		}
		if _, err := hub.PrepareDownBundle(t.Context(), "gate-a"); !errors.Is(err, store.ErrRetired) {
			t.Fatalf("bundle for a retired appliance: %v", err)
		}
	})
}

func TestDB_DownBundle(t *testing.T) {
	t.Parallel()
	hub := MustOpenDB(t)
	MustHubAppliance(t, hub, "gate-a")
	app := MustEnrolDB(t, t.TempDir(), "gate-a")
	logScans(t, app, "g", 8)
	up, err := app.PrepareUpBundle(t.Context(), 5, 5, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hub.ImportUpBundle(t.Context(), upImportOf(up), []byte("bundle-public")); err != nil {
		t.Fatal(err)
	}

	down, err := hub.PrepareDownBundle(t.Context(), "gate-a")
	if err != nil {
		t.Fatal(err)
	}
	if down.Seq != 1 || down.District != "xa" || len(down.Marks) == 0 || down.Appliance.BundleInSeq != 1 {
		t.Fatalf("down bundle %d, %d marks, in %d", down.Seq, len(down.Marks), down.Appliance.BundleInSeq)
	}
	in := &store.DownImport{District: down.District, Appliance: "gate-a", Seq: down.Seq, Marks: down.Marks}
	for _, tc := range []struct {
		name string
		mod  func(*store.DownImport)
		want error
	}{
		{"OtherDistrict", func(d *store.DownImport) { d.District = "bj" }, store.ErrBundleForeign},
		{"OtherAppliance", func(d *store.DownImport) { d.Appliance = "gate-b" }, store.ErrBundleForeign},
		{"SeqZero", func(d *store.DownImport) { d.Seq = 0 }, store.ErrBundleReplayed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := *in
			tc.mod(&c)
			if _, err := app.ImportDownBundle(t.Context(), &c, &store.Feed{}); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	res, err := app.ImportDownBundle(t.Context(), in, &store.Feed{})
	if err != nil {
		t.Fatal(err)
	}
	if res.ScansAcked != up.Scans[len(up.Scans)-1].Records[len(up.Scans[len(up.Scans)-1].Records)-1].ID {
		t.Fatalf("scans acknowledged %d", res.ScansAcked)
	}
	if n, _ := app.SyncBacklog(t.Context()); n != 0 {
		t.Fatalf("backlog %d after the hub's answer", n)
	}
	if _, err := app.ImportDownBundle(t.Context(), in, &store.Feed{}); !errors.Is(err, store.ErrBundleReplayed) {
		t.Fatalf("second import: %v", err)
	}
	if d2, err := hub.PrepareDownBundle(t.Context(), "gate-a"); err != nil || d2.Seq != 2 {
		t.Fatalf("next down bundle: %v", err)
	}
	if _, err := hub.PrepareDownBundle(t.Context(), "gate-x"); !errors.Is(err, store.ErrBundleForeign) {
		t.Fatalf("bundle for an unknown appliance: %v", err)
	}
}
