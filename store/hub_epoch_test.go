package store_test

import (
	"bytes"
	"testing"
	"time"

	"passgate/store"
)

// A hub's export and trace rows of an appliance's scans carry the
// appliance's own scan id and its epoch, so each row can be found in the
// appliance's log; the hub's own scans carry their id and no epoch.
func TestDB_HubRowsCarryApplianceScanIDAndEpoch(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dir := t.TempDir()
	app := MustEnrolDB(t, dir, "gate-a")
	hub := MustOpenDB(t)
	id := MustHubAppliance(t, hub, "gate-a")
	sent := logScans(t, app, "a", 10)
	app.Close()
	app = MustOpenDBDir(t, dir)
	if err := app.StartSyncing(ctx); err != nil { // the later scans in a new epoch
		t.Fatal(err)
	}
	sent = append(sent, logScans(t, app, "b", 5)...)
	ingestAll(t, app, hub, id, 4)
	epochs, err := app.SyncEpochs(ctx)
	if err != nil || len(epochs) != 2 {
		t.Fatalf("epochs %d, %v", len(epochs), err)
	}
	epochOf := func(scanID int64) []byte {
		if scanID >= epochs[1].ScansFrom {
			return epochs[1].ID
		}
		return epochs[0].ID
	}
	local := &store.Scan{At: time.Now(), Source: "hub-gate", Decision: "allow", Reason: "ok", Subject: subj(1)}
	if err := hub.LogScan(ctx, local); err != nil {
		t.Fatal(err)
	}

	snap, err := hub.BeginSnapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Close()
	byID := map[int64]*store.Scan{}
	for _, s := range sent {
		byID[s.ID] = s
	}
	remote := 0
	err = snap.EachScan(ctx, store.ExportFilter{}, func(s *store.Scan) error {
		if s.Appliance != "gate-a" {
			if s.ID != local.ID || s.Epoch != [store.EpochSize]byte{} {
				t.Errorf("hub's own scan exported as id %d epoch %x", s.ID, s.Epoch)
			}
			return nil
		}
		remote++
		orig := byID[s.ID]
		if orig == nil || orig.Source != s.Source || !bytes.Equal(s.Epoch[:], epochOf(s.ID)) {
			t.Errorf("hub row id %d epoch %x: not the appliance's scan %+v", s.ID, s.Epoch, orig)
		}
		return nil
	})
	if err != nil || remote != len(sent) {
		t.Fatalf("exported %d appliance scans of %d, %v", remote, len(sent), err)
	}

	res, err := hub.Trace(ctx, store.TraceQuery{Subject: subj(1), From: t0.Add(-time.Hour), To: time.Now().Add(time.Hour), Window: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, c := range res.Checks {
		if c.Source == "hub-gate" {
			if c.ApplianceScanID != local.ID || c.Epoch != nil {
				t.Errorf("hub's own check: id %d epoch %x", c.ApplianceScanID, c.Epoch)
			}
			continue
		}
		seen++
		orig := byID[c.ApplianceScanID]
		if orig == nil || orig.Subject != subj(1) || !bytes.Equal(c.Epoch, epochOf(c.ApplianceScanID)) {
			t.Errorf("trace check %+v: not the appliance's scan", c)
		}
		for _, ct := range c.Contacts {
			if o := byID[ct.ApplianceScanID]; o == nil || o.Subject != ct.Subject || !bytes.Equal(ct.Epoch, epochOf(ct.ApplianceScanID)) {
				t.Errorf("trace contact %+v: not the appliance's scan", ct)
			}
		}
	}
	if seen == 0 {
		t.Fatal("no check of the appliance traced: bad fixture")
	}
}
