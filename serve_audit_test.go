package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"passgate/appliance"
	"passgate/store"
)

// startServe runs serve on dir in this process until the returned stop
// is called (which waits for it to exit and returns its log).
func startServe(t *testing.T, dir string) (base string, stop func() string) {
	t.Helper()
	p := start(t, procOpts{inProcess: true, args: []string{"serve", "--data", dir, "--addr", "127.0.0.1:0"}})
	return p.http, p.stopClean
}

type readyz struct {
	Status   string            `json:"status"`
	Checks   map[string]string `json:"checks"`
	Warnings []string          `json:"warnings"`
}

func getReadyz(t *testing.T, base string) (int, readyz) {
	t.Helper()
	resp, err := http.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var r readyz
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("readyz %s: %v", b, err)
	}
	return resp.StatusCode, r
}

// TestServe_AuditTrailBroken: serve starts on a tampered trail (it keeps
// checking passes) but says so at once: in its log and on /readyz.
func TestServe_AuditTrailBroken(t *testing.T) {
	dir, _, _ := checkpointedTrail(t)

	base, stop := startServe(t, dir)
	if code, r := getReadyz(t, base); code != http.StatusOK || r.Checks["audit"] != "ok" || len(r.Warnings) != 0 {
		t.Fatalf("intact trail: %d %+v", code, r)
	}
	stop()

	raw := rawDB(t, dir)
	mustExec(t, raw, `DELETE FROM status_changes WHERE reason = 'close contact'`)
	raw.Close()
	base, stop = startServe(t, dir)
	code, r := getReadyz(t, base)
	if code != http.StatusOK || r.Checks["audit"] != "warning" {
		t.Fatalf("broken trail: %d %+v, want ready with an audit warning", code, r)
	}
	if len(r.Warnings) == 0 || !strings.Contains(r.Warnings[0], "AUDIT TRAIL BROKEN") || !strings.Contains(r.Warnings[0], "missing from status_changes") {
		t.Fatalf("warnings %q", r.Warnings)
	}
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(m), "\npassgate_audit_trail_broken 1\n") || !strings.Contains(string(m), "\npassgate_audit_alarms_total 0\n") {
		t.Errorf("metrics do not show the broken trail: %q", regexp.MustCompile(`(?m)^passgate_a.*$`).FindAllString(string(m), -1))
	}
	if log := stop(); !strings.Contains(log, "AUDIT TRAIL BROKEN") {
		t.Fatalf("log does not say the trail is broken:\n%s", log)
	}
}

// TestServe_AuditRestoreDetected: a database put back from an older
// backup is behind the checkpoint file. serve starts, records the
// restore, keeps the old checkpoints aside, warns, and starts a new
// checkpoint file.
func TestServe_AuditRestoreDetected(t *testing.T) {
	dir, _, _ := checkpointedTrail(t)
	backup := filepath.Join(t.TempDir(), "copy.db")
	if r := runCLI(t, nil, "", "backup", "--data", dir, "--out", backup); r.code != 0 {
		t.Fatalf("backup: exit %d: %s", r.code, r.stderr)
	}
	// A backup copies every key: it is on record, by the OS user.
	if r := runAudit(t, "list", "--data", dir, "-n", "1"); !strings.Contains(r.stdout, `"action":"backup"`) ||
		!strings.Contains(r.stdout, `"actor":"`+string(cliActor())+`"`) || !strings.Contains(r.stdout, backup) {
		t.Fatalf("backup record: %q", r.stdout)
	}
	if r := runCLI(t, nil, "", "policy", "--data", dir, "--min-doses", "1"); r.code != 0 {
		t.Fatalf("policy: exit %d: %s", r.code, r.stderr)
	}
	_, stop := startServe(t, dir)
	stop() // writes a checkpoint of the longer trail
	cpFile := filepath.Join(dir, appliance.CheckpointFileName)
	notes, err := appliance.ReadCheckpointFile(cpFile)
	if err != nil || len(notes) < 2 {
		t.Fatalf("checkpoints after serve: %d, %v", len(notes), err)
	}
	newest, err := appliance.CheckpointText(notes[len(notes)-1])
	if err != nil || newest.Size != 8 { // 6, the backup's record, the policy change
		t.Fatalf("newest checkpoint %+v, %v; want 8 records", newest, err)
	}

	// Restore: stop, put the copy in place, remove the WAL files.
	b, err := os.ReadFile(backup)
	if err != nil {
		t.Fatal(err)
	}
	for _, suffix := range []string{"-wal", "-shm"} {
		os.Remove(filepath.Join(dir, store.FileName+suffix))
	}
	mustWrite(t, filepath.Join(dir, store.FileName), b)

	base, stop := startServe(t, dir)
	code, r := getReadyz(t, base)
	if code != http.StatusOK || r.Checks["audit"] != "warning" || len(r.Warnings) == 0 ||
		!strings.Contains(strings.Join(r.Warnings, "\n"), "database restored or rolled back: the trail has 7 records, its checkpoint had 8") {
		t.Fatalf("restored database: %d %+v", code, r)
	}
	log := stop()
	if !strings.Contains(log, "AUDIT TRAIL ROLLED BACK") {
		t.Errorf("log:\n%s", log)
	}
	aside, _ := filepath.Glob(cpFile + ".before-restore-*")
	if len(aside) != 1 {
		t.Fatalf("old checkpoints not kept aside: %v", aside)
	}
	db, err := store.Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var restore *store.AuditRecord
	if err := db.FindAudit(context.Background(), store.AuditFilter{}, func(a *store.AuditRecord) error {
		if a.Action == store.AuditRestoreDetected {
			c := *a
			restore = &c
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if restore == nil || !strings.Contains(string(restore.Detail), `"checkpoint_size":8`) {
		t.Fatalf("restore record %+v", restore)
	}
	// The new file starts from the restored trail and is extended by it.
	if r := runAudit(t, "verify", "--data", dir, "--checkpoint", cpFile); r.code != exitOK {
		t.Fatalf("verify against the new checkpoint file: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
	if r := runAudit(t, "verify", "--data", dir, "--checkpoint", aside[0]); r.code != exitBroken {
		t.Fatalf("verify against the checkpoints from before the restore: exit %d, %q", r.code, r.stdout)
	}
}
