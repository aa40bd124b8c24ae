// Package figurestest makes district hubs with known figures for the
// city dashboard's tests: scans at known times around a fixed clock,
// appliances that last pulled at known ages, and revocations.
package figurestest

import (
	"context"
	"crypto/sha256"
	"fmt"
	"testing"
	"time"

	"passgate/district"
	"passgate/store"
)

// Want are the figures a hub made by Hub answers.
type Want struct {
	District                       string
	Scans5m, ScansHour, ScansToday int64
	Allows, Denies                 int64
	Appliances, Seen               int64
	OldestListS, MedianListS       int64
	Revocations                    int64
}

// Now is the hubs' clock: 10:02:30 in Xi'an, so that the last whole
// 5-minute bucket is 09:55 to 10:00 and the hour 09:00 to 10:00.
var Now = time.Date(2026, 12, 4, 10, 2, 30, 0, time.FixedZone("CST", 8*3600))

// Hub makes a district hub named name in a fresh directory, its clock
// at Now, and fills it: k times a fixed pattern of scans (in the last 5
// minutes, earlier in the hour, earlier today, in the current bucket,
// yesterday), k+2 appliances (k+1 pulled recently, one two hours ago,
// and one never enrolled) and k revocations. It returns the hub's
// store and what it must answer.
func Hub(tb testing.TB, name string, k int) (*store.DB, Want) {
	tb.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	if _, err := district.Setup(ctx, db, district.SetupOptions{Name: name}); err != nil {
		tb.Fatal(err)
	}
	db.Now = func() time.Time { return Now }
	d, err := db.District(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	at := func(h, m int) time.Time { return time.Date(2026, 12, 4, h, m, 0, 0, Now.Location()) }
	scans := []struct {
		at       time.Time
		decision string
	}{
		{at(9, 58), "allow"}, {at(9, 56), "allow"}, {at(9, 57), "deny"}, // the last 5 minutes
		{at(9, 20), "allow"}, {at(9, 0), "allow"}, {at(9, 54), "deny"}, // the hour
		{at(8, 10), "deny"},                 // today
		{at(10, 1), "allow"},                // the current bucket: today only
		{at(0, 0).Add(-time.Hour), "allow"}, // yesterday
	}
	for range k {
		for i, s := range scans {
			reason := "ok"
			if s.decision == "deny" {
				reason = "revoked"
			}
			if err := db.LogScan(ctx, &store.Scan{At: s.at, Source: fmt.Sprintf("gate-%d", i%2), Decision: s.decision, Reason: reason}); err != nil {
				tb.Fatal(err)
			}
		}
	}
	ages := []time.Duration{2 * time.Hour}
	for i := range k + 1 {
		ages = append(ages, time.Duration(30+i)*time.Second)
	}
	var contacts []store.ApplianceContact
	for i, age := range ages {
		id := appliance(tb, db, fmt.Sprintf("gate-%02d", i), true)
		contacts = append(contacts, store.ApplianceContact{ID: id, At: Now.Add(-age)})
	}
	appliance(tb, db, "not-enrolled", false)
	if err := db.TouchAppliances(ctx, contacts); err != nil {
		tb.Fatal(err)
	}
	for i := range k {
		if err := db.CreateRevocation(ctx, &store.Revocation{Kind: store.RevokePass, Target: []byte(fmt.Sprintf("pass-%07d", i)), Reason: "test"}); err != nil {
			tb.Fatal(err)
		}
	}
	n := int64(k)
	return db, Want{District: d.ID, Scans5m: 3 * n, ScansHour: 6 * n, ScansToday: 8 * n, Allows: 5 * n, Denies: 3 * n,
		Appliances: n + 2, Seen: n + 1, OldestListS: 7200, MedianListS: int64(30 + (n+1)/2), Revocations: n}
}

// appliance adds an appliance to the hub, enrolled or not, and returns
// its id.
func appliance(tb testing.TB, db *store.DB, name string, enrol bool) int64 {
	tb.Helper()
	ctx := context.Background()
	code := sha256.Sum256([]byte("code " + name))
	a, err := db.AddAppliance(ctx, name, store.ApplianceGate, code[:], Now.Add(time.Hour), "admin")
	if err != nil {
		tb.Fatal(err)
	}
	if !enrol {
		return a.ID
	}
	token := sha256.Sum256([]byte("token " + name))
	a, err = db.EnrolAppliance(ctx, &store.Enrolment{CodeHash: code[:], TokenHash: token[:], BundleKey: []byte("bundle-public"), Actor: "hub"})
	if err != nil {
		tb.Fatal(err)
	}
	return a.ID
}
