package web_test

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// An appliance whose hub's history went backwards (restored from a
// backup) says so: /readyz warns for a while, the status page shows when.
func TestSyncVisibility_HubHistoryChanged(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	cl := ts.login(t, "admin", ts.AdminPassword)
	now := time.Now()
	ms := func(d time.Duration) string { return strconv.FormatInt(now.Add(-d).UnixMilli(), 10) }
	rawExec(t, ts,
		`INSERT INTO sync_hub (id, url, hub_ca, appliance, token, bundle_key, enrolled_ms)
			VALUES (1, 'https://hub.example:8443', x'01', 'gate-east', zeroblob(32), x'02', 0)`,
		`INSERT INTO sync_state (id, last_pull_ms) VALUES (1, `+ms(0)+`)`)
	if code, b := getReady(t, ts); code != 200 || len(b.Warnings) != 0 || b.Sync["history_changed"] != nil {
		t.Fatalf("readyz before any change of the hub's history: %d %+v", code, b)
	}
	if getDoc(t, ts, cl, "/admin/status").Find(`[data-testid="sync-history-changed"]`).Length() != 0 {
		t.Fatal("status page shows a change of the hub's history that never happened")
	}

	rawExec(t, ts, `UPDATE sync_state SET history_changed_ms = `+ms(5*time.Minute))
	code, b := getReady(t, ts)
	if code != 200 || len(b.Warnings) != 1 || !strings.Contains(b.Warnings[0], "hub history changed at") ||
		!strings.Contains(b.Warnings[0], "re-read the feed") || b.Sync["history_changed"] == nil {
		t.Fatalf("readyz after the hub's history changed: %d %+v", code, b)
	}
	doc := getDoc(t, ts, cl, "/admin/status")
	if got := doc.Find(`[data-testid="sync-history-changed"]`).Text(); !strings.Contains(got, "已重新读取") {
		t.Fatalf("status page after the hub's history changed: %q", got)
	}

	// Long ago: still on record, no longer a warning.
	rawExec(t, ts, `UPDATE sync_state SET history_changed_ms = `+ms(2*time.Hour))
	if code, b := getReady(t, ts); code != 200 || len(b.Warnings) != 0 || b.Sync["history_changed"] == nil {
		t.Fatalf("readyz two hours after the hub's history changed: %d %+v", code, b)
	}
}
