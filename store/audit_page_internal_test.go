package store

import (
	"context"
	"strings"
	"testing"
	"time"
)

// Each filter of the audit page reaches its index: a page is a range
// scan of about its size, never a scan of the whole trail, and never an
// OFFSET.
func TestAuditPagePlan(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	from := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		q     AuditPage
		index string
	}{
		{AuditPage{Actor: "li"}, "audit_actor"},
		{AuditPage{Action: AuditTrace}, "audit_action"},
		{AuditPage{Before: 100}, "INTEGER PRIMARY KEY"},
		{AuditPage{From: from, To: from.Add(time.Hour)}, "audit_at"},
	}
	for _, tc := range cases {
		query := auditPageSQL(tc.q)
		if strings.Contains(strings.ToUpper(query), "OFFSET") {
			t.Fatalf("%+v: the page query uses OFFSET", tc.q)
		}
		rows, err := db.r.QueryContext(ctx, "EXPLAIN QUERY PLAN "+query, auditPageArgs(tc.q, 100, from.UnixMilli(), from.Add(time.Hour).UnixMilli(), 50)...)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		joined := strings.Join(plan, "; ")
		// A sort is fine over a time range (it holds only the range), never
		// over the whole trail.
		sorts := strings.Contains(joined, "TEMP B-TREE") && tc.q.From.IsZero()
		if !strings.Contains(joined, tc.index) || sorts {
			t.Errorf("%+v: plan %q, want %s", tc.q, joined, tc.index)
		}
		t.Logf("%+v: %s", tc.q, joined)
	}
}
