package export

import (
	"database/sql"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"passgate/district"
	"passgate/pass"
	"passgate/store"
)

// districtRecord is one record an enrolled appliance sent a hub, written
// straight into the district tables the way ingest stores it.
type districtRecord struct {
	appliance string
	at        time.Time
	source    string
	decision  string
	reason    string
}

// fillHub makes db a hub with two appliances and stores their records:
// scans interleaved in time with the hub's own, one pass, one status
// change and one audit record each, with bodies built by SQLite's
// json_object exactly as the appliances' outbox triggers build them.
func fillHub(t *testing.T, db *store.DB) (hubScans []*store.Scan, remote []districtRecord) {
	t.Helper()
	ctx := t.Context()
	if _, err := district.EnsureSetup(ctx, db, district.SetupOptions{Name: "雁塔区", Appliance: "hub", AdminPassword: "correct horse battery"}); err != nil {
		t.Fatal(err)
	}
	for i := range 6 {
		s := &store.Scan{At: day0.Add(time.Duration(2*i) * time.Second), Source: "门岗", Decision: "allow", Reason: "ok",
			PassID: pass.ID{byte(i), 1}, Subject: pass.Subject{byte(i), 2}, KID: pass.KeyID{3}}
		if err := db.LogScan(ctx, s); err != nil {
			t.Fatal(err)
		}
		hubScans = append(hubScans, s)
	}
	raw, err := sql.Open("sqlite", db.Path()+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := raw.Exec(q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec(`INSERT INTO appliances (id, name, may_issue, created_ms) VALUES (1, 'gate-east', 1, 0), (2, '=west', 0, 0)`)
	for i := range 10 {
		r := districtRecord{
			appliance: []string{"gate-east", "=west"}[i%2],
			at:        day0.Add(time.Duration(2*i+1) * time.Second), // between the hub's own
			source:    []string{"东门", "=1+1"}[i%2],
			decision:  []string{"allow", "deny"}[i%2],
			reason:    []string{"ok", "revoked"}[i%2],
		}
		if i == 9 {
			r.at = day0.Add(2 * time.Second) // a tie with a hub scan: the hub's comes first
		}
		exec(`INSERT INTO district_scans (appliance_id, seq, at_ms, source, decision, reason, repeat, pass_id, subject, kid, received_ms)
			VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?, NULL, 0)`, i%2+1, i+1, r.at.UnixMilli(), r.source, r.decision, r.reason,
			[]byte{byte(i), 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, []byte{byte(i), 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9})
		remote = append(remote, r)
	}
	at := day0.Add(30 * time.Second).UnixMilli()
	exec(`INSERT INTO district_events (appliance_id, seq, kind, at_ms, body, received_ms) VALUES
		(1, 1, 'pass', ?1, json_object('id', hex(x'0102030405060708090a0b0c'), 'subject', hex(x'11111111111111111111111111111111'),
			'kid', hex(x'2222222222222222'), 'kind', 2, 'color', 1, 'issued_ms', ?1, 'expires_ms', ?1 + 86400000, 'actor', '=issuer'), 0),
		(1, 2, 'status', ?1, json_object('subject', hex(x'11111111111111111111111111111111'), 'from_color', NULL, 'to_color', 3,
			'reason', '密接', 'actor', 'desk', 'at_ms', ?1), 0),
		(1, 3, 'audit', ?1, json_object('seq', 7, 'at_ms', ?1, 'actor', 'desk', 'action', 'status_changed', 'subject', 'abc',
			'detail', '{"reason":"密接"}', 'hash', hex(x'3333333333333333333333333333333333333333333333333333333333333333')), 0),
		(2, 1, 'audit', ?1 + 1, json_object('seq', 1, 'at_ms', ?1 + 1, 'actor', 'x', 'action', 'login', 'subject', 'x',
			'detail', '', 'hash', 'not hex'), 0)`, at)
	return hubScans, remote
}

// On a hub, exports cover the records of every enrolled appliance, merged
// in time order with the hub's own, each row naming its appliance, with
// filters and counts applying to both.
func TestDistrictExport(t *testing.T) {
	t.Parallel()
	db := openDB(t)
	hubScans, remote := fillHub(t, db)

	type row struct {
		at        time.Time
		appliance string
		source    string
		decision  string
		local     bool
	}
	var want []row
	for _, s := range hubScans {
		want = append(want, row{s.At, "hub", s.Source, s.Decision, true})
	}
	for _, r := range remote {
		want = append(want, row{r.at, r.appliance, r.source, r.decision, false})
	}
	sort.SliceStable(want, func(i, j int) bool {
		if !want[i].at.Equal(want[j].at) {
			return want[i].at.Before(want[j].at)
		}
		return want[i].local && !want[j].local
	})
	for _, filter := range []struct {
		name string
		keep func(row) bool
		mod  func(*Request)
	}{
		{"All", func(row) bool { return true }, func(*Request) {}},
		{"Deny", func(r row) bool { return r.decision == "deny" }, func(r *Request) { r.Decision = "deny" }},
		{"Source", func(r row) bool { return r.source == "东门" }, func(r *Request) { r.Source = "东门" }},
		{"Range", func(r row) bool {
			return !r.at.Before(day0.Add(5*time.Second)) && r.at.Before(day0.Add(12*time.Second))
		},
			func(r *Request) { r.From, r.To = day0.Add(5*time.Second), day0.Add(12*time.Second) }},
	} {
		t.Run(filter.name, func(t *testing.T) {
			r := request(KindScans, CSV)
			filter.mod(r)
			var total int64
			var buf strings.Builder
			n, err := Run(t.Context(), db, &buf, r, func(_, tot int64) { total = tot })
			if err != nil {
				t.Fatal(err)
			}
			rows := readCSV(t, []byte(buf.String()))[1:]
			var exp []string
			for _, w := range want {
				if filter.keep(w) {
					exp = append(exp, fmt.Sprintf("%s|%s|%s|%s", w.at.In(shanghai).Format("2006-01-02T15:04:05.000+08:00"), Neutralise(w.source), w.decision, Neutralise(w.appliance)))
				}
			}
			var got []string
			for _, c := range rows {
				got = append(got, fmt.Sprintf("%s|%s|%s|%s", c[0], c[1], c[2], c[8]))
			}
			if strings.Join(got, "\n") != strings.Join(exp, "\n") {
				t.Fatalf("rows:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(exp, "\n"))
			}
			if n != int64(len(exp)) || total != n {
				t.Fatalf("%d rows written, %d counted, want %d", n, total, len(exp))
			}
		})
	}

	// Passes, status changes and audit records sent by appliances.
	r := request(KindPasses, CSV)
	rows := readCSV(t, run(t, db, r))
	last := rows[len(rows)-1]
	if last[1] != "0102030405060708090a0b0c" || last[3] != "paper" || last[4] != "green" || last[7] != "'=issuer" || last[8] != "gate-east" {
		t.Fatalf("district pass row %q", last)
	}
	r = request(KindStatus, CSV)
	rows = readCSV(t, run(t, db, r))
	last = rows[len(rows)-1]
	if last[1] != strings.Repeat("11", 16) || last[2] != "" || last[3] != "red" || last[4] != "密接" || last[6] != "gate-east" {
		t.Fatalf("district status row %q", last)
	}
	r = request(KindStatus, CSV)
	r.Reason = "密接"
	if rows = readCSV(t, run(t, db, r)); len(rows) != 2 {
		t.Fatalf("status changes with reason 密接: %q", rows)
	}
	r = request(KindAudit, CSV)
	r.Reason = store.AuditStatusChanged
	rows = readCSV(t, run(t, db, r))
	if len(rows) != 2 || rows[1][0] != "7" || rows[1][5] != `{"reason":"密接"}` || rows[1][6] != strings.Repeat("33", 32) || rows[1][7] != "gate-east" {
		t.Fatalf("district audit rows %q", rows)
	}
	// A body that does not decode as the hub expects is exported with
	// what it holds, never dropped.
	r.Reason = store.AuditLogin
	rows = readCSV(t, run(t, db, r))
	if len(rows) != 2 || rows[1][7] != "'=west" || rows[1][6] != "" || rows[1][2] != "x" {
		t.Fatalf("district login rows %q", rows)
	}
}
