package metrics_test

import (
	"database/sql"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// Sync series follow the database: nothing but enrolled 0 on a standalone
// appliance; the link to the hub once enrolled; each appliance on a hub.
func TestMetrics_Sync(t *testing.T) {
	t.Parallel()
	m, db := newMetrics(t)
	want := `
# HELP passgate_sync_enrolled 1 when this appliance is enrolled with a district hub.
# TYPE passgate_sync_enrolled gauge
passgate_sync_enrolled 0
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), "passgate_sync_enrolled", "passgate_sync_outbox_records", "passgate_hub_appliance_info"); err != nil {
		t.Fatal(err)
	}

	raw, err := sql.Open("sqlite", db.Path()+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	pull := time.Now().Add(-90 * time.Second)
	for _, q := range []string{
		`INSERT INTO scans (at_ms, source, decision, reason, repeat) VALUES (0, 'g', 'deny', 'not_a_pass', 0), (1, 'g', 'deny', 'not_a_pass', 0), (2, 'g', 'deny', 'not_a_pass', 0)`,
		`INSERT INTO sync_hub (id, url, hub_ca, appliance, token, bundle_key, enrolled_ms)
			VALUES (1, 'https://hub.example:8443', x'01', 'gate-east', zeroblob(32), x'02', 0)`,
		`INSERT INTO sync_state (id, scans_acked, last_pull_ms) VALUES (1, 1, ` + strconv.FormatInt(pull.UnixMilli(), 10) + `)`,
		`INSERT INTO appliances (name, may_issue, created_ms, enrolled_ms, last_contact_ms, clock_skew_ms, backlog)
			VALUES ('office', 1, 0, 1, 5000, -3000, 12), ('spare', 0, 0, NULL, NULL, 0, 0)`,
	} {
		if _, err := raw.ExecContext(t.Context(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	want = `
# HELP passgate_sync_enrolled 1 when this appliance is enrolled with a district hub.
# TYPE passgate_sync_enrolled gauge
passgate_sync_enrolled 1
# HELP passgate_sync_outbox_records Records waiting for the hub's acknowledgement, by stream (scans, events).
# TYPE passgate_sync_outbox_records gauge
passgate_sync_outbox_records{stream="events"} 0
passgate_sync_outbox_records{stream="scans"} 2
# HELP passgate_hub_appliance_info Always 1, one series per appliance registered with this hub; state is pending, active or retired.
# TYPE passgate_hub_appliance_info gauge
passgate_hub_appliance_info{appliance="office",state="active"} 1
passgate_hub_appliance_info{appliance="spare",state="pending"} 1
# HELP passgate_hub_appliance_backlog_records Records the appliance reported still waiting to be sent, at its last contact.
# TYPE passgate_hub_appliance_backlog_records gauge
passgate_hub_appliance_backlog_records{appliance="office"} 12
passgate_hub_appliance_backlog_records{appliance="spare"} 0
# HELP passgate_hub_appliance_clock_skew_seconds The appliance's clock minus the hub's at its last contact.
# TYPE passgate_hub_appliance_clock_skew_seconds gauge
passgate_hub_appliance_clock_skew_seconds{appliance="office"} -3
passgate_hub_appliance_clock_skew_seconds{appliance="spare"} 0
# HELP passgate_hub_appliance_last_contact_timestamp_seconds When the appliance last pushed or pulled; absent before its first contact.
# TYPE passgate_hub_appliance_last_contact_timestamp_seconds gauge
passgate_hub_appliance_last_contact_timestamp_seconds{appliance="office"} 5
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), "passgate_sync_enrolled", "passgate_sync_outbox_records",
		"passgate_hub_appliance_info", "passgate_hub_appliance_backlog_records", "passgate_hub_appliance_clock_skew_seconds",
		"passgate_hub_appliance_last_contact_timestamp_seconds"); err != nil {
		t.Fatal(err)
	}
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "passgate_sync_lists_age_seconds" {
			if age := mf.GetMetric()[0].GetGauge().GetValue(); age < 89 || age > 150 {
				t.Fatalf("lists age %v s, want about 90", age)
			}
			return
		}
	}
	t.Fatal("no passgate_sync_lists_age_seconds series on an enrolled appliance")
}
