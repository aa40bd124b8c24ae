package main

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"passgate/citylink"
	"passgate/citystats"
	"passgate/store"
)

// `city dashboard` end to end: the two districts' hubs, real passgate
// processes serving with --city, answer on their links with their
// figures and their link's lag; a district with no hub is named and the
// command exits 3; each hub recorded the officer who asked.
func TestCLI_CityDashboard(t *testing.T) {
	f := newCityFixture(t)
	console := f.cluster.Connect(f.cluster.ConsoleSeedFile(), nats.CustomInboxPrefix(citylink.ConsoleInboxPrefix))
	for _, d := range f.ids {
		waitFor(t, 30*time.Second, "hub "+d+" answering dashboard requests", func() bool {
			_, err := console.Request(citystats.Subject(d), []byte("{}"), time.Second)
			return err == nil
		})
	}
	args := []string{"city", "dashboard", "--city", f.cluster.URLs(), "--city-creds", f.cluster.ConsoleSeedFile(), "--timeout", "3s", "--as", "officer-1"}
	r := runCLI(t, f.env, "", append(args, "--districts", strings.Join(append(f.ids, "lintong"), ","))...)
	if r.code != exitIncomplete || !strings.Contains(r.stdout, "MISSING lintong: no hub") {
		t.Fatalf("with a district missing: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	for i, d := range f.ids {
		want, err := f.dbs[i].HubFigures(context.Background(), time.Now(), time.Now().Add(-24*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		var row []string
		for _, line := range strings.Split(r.stdout, "\n") {
			if fields := strings.Fields(line); len(fields) > 0 && fields[0] == d {
				row = fields
			}
		}
		// DISTRICT LAST_5M LAST_HOUR TODAY ALLOWED DENIED SEEN APPLIANCES OLDEST MEDIAN REVOCATIONS CITY_LAG HUB_TIME
		if len(row) != 13 || row[11] == "-" || row[10] != strconv.FormatInt(want.Revocations, 10) || row[7] != strconv.FormatInt(want.Appliances, 10) {
			t.Fatalf("%s: row %q (revocations %d, appliances %d, the link's lag known)\n%s", d, row, want.Revocations, want.Appliances, r.stdout)
		}
	}
	r = runCLI(t, f.env, "", append(args, "--districts", strings.Join(f.ids, ","))...)
	if r.code != 0 || strings.Contains(r.stdout, "MISSING") {
		t.Fatalf("all districts: exit %d %s %s", r.code, r.stdout, r.stderr)
	}
	for _, db := range f.dbs {
		n := 0
		db.FindAudit(context.Background(), store.AuditFilter{}, func(rec *store.AuditRecord) error {
			if rec.Action == store.AuditCityFiguresAnswered && rec.Actor == "city:officer-1" {
				n++
			}
			return nil
		})
		if n != 1 {
			t.Errorf("a hub recorded %d answers to the officer, want 1 (the second within %v)", n, citystats.AuditEvery)
		}
	}
}
