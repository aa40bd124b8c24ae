package store_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"passgate/store"
)

// Every filter of a page, and walking the pages, selects exactly the
// records a plain walk over the whole trail selects: none twice, none
// missing, newest first.
func TestDB_FindAuditPage(t *testing.T) {
	db := MustOpenDB(t)
	MustSetup(t, db)
	base := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	actors := []store.Actor{"admin", "li", "wang"}
	actions := []string{store.AuditExport, store.AuditTrace, store.AuditLogin}
	for i := range 95 {
		rec := &store.AuditRecord{At: base.Add(time.Duration(i) * 37 * time.Minute), Actor: actors[i%3], Action: actions[i%5%3],
			Subject: fmt.Sprint("s", i)}
		if err := db.Audit(ctxb(), rec); err != nil {
			t.Fatal(err)
		}
	}
	var all []store.AuditRecord
	if err := db.FindAudit(ctxb(), store.AuditFilter{}, func(r *store.AuditRecord) error {
		all = append(all, *r)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	from, to := base.Add(10*time.Hour), base.Add(40*time.Hour)
	cases := []struct {
		name string
		q    store.AuditPage
		keep func(store.AuditRecord) bool
	}{
		{"all", store.AuditPage{}, func(store.AuditRecord) bool { return true }},
		{"actor", store.AuditPage{Actor: "li"}, func(r store.AuditRecord) bool { return r.Actor == "li" }},
		{"action", store.AuditPage{Action: store.AuditTrace}, func(r store.AuditRecord) bool { return r.Action == store.AuditTrace }},
		{"time", store.AuditPage{From: from, To: to}, func(r store.AuditRecord) bool { return !r.At.Before(from) && r.At.Before(to) }},
		{"all three", store.AuditPage{From: from, To: to, Actor: "wang", Action: store.AuditExport}, func(r store.AuditRecord) bool {
			return !r.At.Before(from) && r.At.Before(to) && r.Actor == "wang" && r.Action == store.AuditExport
		}},
		{"nobody", store.AuditPage{Actor: "nobody"}, func(store.AuditRecord) bool { return false }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var want []int64
			for _, r := range slices.Backward(all) {
				if tc.keep(r) {
					want = append(want, r.Seq)
				}
			}
			for _, limit := range []int{1, 7, store.MaxAuditPage} {
				q := tc.q
				q.Limit = limit
				var got []int64
				for pages := 0; ; pages++ {
					if pages > 200 {
						t.Fatal("paging does not end")
					}
					recs, next, err := db.FindAuditPage(ctxb(), q)
					if err != nil {
						t.Fatal(err)
					}
					if len(recs) > limit {
						t.Fatalf("page of %d records, limit %d", len(recs), limit)
					}
					for _, r := range recs {
						got = append(got, r.Seq)
					}
					if next == 0 {
						break
					}
					q.Before = next
				}
				if !slices.Equal(got, want) {
					t.Fatalf("limit %d: got %v, want %v", limit, got, want)
				}
			}
		})
	}
	// A page size out of bounds is the bound, not the whole trail.
	recs, _, err := db.FindAuditPage(ctxb(), store.AuditPage{Limit: 1 << 30})
	if err != nil || len(recs) != min(len(all), store.MaxAuditPage) {
		t.Fatalf("unbounded limit: %d records, %v", len(recs), err)
	}
}
