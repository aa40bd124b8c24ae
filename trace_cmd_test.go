package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"passgate/district"
	"passgate/pass"
	"passgate/store"
)

func runTrace(t *testing.T, env map[string]string, stdin string, args ...string) result {
	t.Helper()
	return runCLI(t, env, stdin, append([]string{"trace"}, args...)...)
}

func TestCLI_Trace(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"PASSGATE_ADMIN_PASSWORD": "a long admin password", "PASSGATE_DISTRICT_NAME": "雁塔区"}
	const id = "11010519491231002X"
	// The first run sets the district up and finds nothing.
	r := runTrace(t, env, "", "--data", dir, "--id", id, "--from", "2026-11-01", "--to", "2026-11-15")
	if r.code != 0 || !strings.Contains(r.stderr, "0 checks") {
		t.Fatalf("first trace: exit %d: %s", r.code, r.stderr)
	}
	ctx := context.Background()
	db, err := store.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	person, err := district.SubjectOf(ctx, db, id)
	if err != nil {
		t.Fatal(err)
	}
	// The contact is registered in the district; the file names them only
	// as the product shows people elsewhere: masked, with the ID tail.
	const otherID, otherName = "E12345678", "王小明"
	other, err := district.SubjectOf(ctx, db, otherID)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.SavePerson(ctx, &store.Person{Subject: other, MaskedName: pass.MaskName(otherName), IDTail: pass.IDTail(otherID),
		IDType: store.IDPassport, Color: pass.Green}, "test"); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 2, 9, 0, 0, 0, time.Local)
	for _, s := range []*store.Scan{
		{At: at, Source: "东门", Decision: "allow", Reason: "ok", Subject: person},
		{At: at.Add(15 * time.Minute), Source: "东门", Decision: "allow", Reason: "ok", Subject: other},
		{At: at.Add(16 * time.Minute), Source: "东门", Decision: "allow", Reason: "ok", Subject: pass.Subject{0x0b, 2}},
	} {
		if err := db.LogScan(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()

	out := filepath.Join(dir, "trace.csv")
	r = runTrace(t, env, "", "--data", dir, "--id", "110105 19491231 002x", "--from", "2026-11-01", "--to", "2026-11-15", "--window", "15m", "--out", out)
	if r.code != 0 || !strings.Contains(r.stderr, "1 checks, 1 contacts") {
		t.Fatalf("trace: exit %d: %s", r.code, r.stderr)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	checks, _, _ := strings.Cut(string(bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))), "\r\n\r\n")
	recs, err := csv.NewReader(strings.NewReader(checks)).ReadAll()
	if err != nil || !bytes.HasPrefix(b, []byte("\xef\xbb\xbf")) || len(recs) != 2 || recs[1][7] != hex.EncodeToString(other[:]) ||
		recs[1][8] != "王*明" || recs[1][9] != "5678" || recs[1][12] != "900" {
		t.Errorf("trace file %q, %v", recs, err)
	}

	// The number from standard input, JSON Lines to standard output.
	r = runTrace(t, env, id+"\n", "--data", dir, "--id", "-", "--from", "2026-11-01", "--to", "2026-11-15", "--window", "20", "--format", "jsonl")
	if r.code != 0 || strings.Count(r.stdout, "\n") != 5 || !strings.Contains(r.stdout, `"v":1`) {
		t.Errorf("jsonl: exit %d, %q, %s", r.code, r.stdout, r.stderr)
	}
	checkTraceJSONLNames(t, r.stdout, hex.EncodeToString(other[:]), otherID, otherName)

	// Every run is audited with the pseudonym, never the number.
	adb, err := store.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer adb.Close()
	var traces []*store.AuditRecord
	err = adb.FindAudit(ctx, store.AuditFilter{}, func(a *store.AuditRecord) error {
		if a.Action == store.AuditTrace {
			rc := *a
			traces = append(traces, &rc)
		}
		if strings.Contains(a.Subject+string(a.Detail), "19491231") {
			t.Errorf("audit record %d holds the ID number", a.Seq)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(traces) != 3 || traces[1].Actor != cliActor() || traces[1].Subject != hex.EncodeToString(person[:]) ||
		!strings.Contains(string(traces[1].Detail), `"contact_rows":1`) || !strings.Contains(string(traces[2].Detail), `"contact_rows":2`) {
		t.Errorf("audited traces %+v", traces)
	}
}

func TestCLI_TraceBadInput(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"PASSGATE_ADMIN_PASSWORD": "a long admin password"}
	const id = "11010519491231002X"
	base := []string{"--data", dir, "--out", filepath.Join(dir, "out")}
	for name, args := range map[string][]string{
		"no id":          {"--from", "2026-11-01", "--to", "2026-11-15"},
		"bad check":      {"--id", "110105194912310021", "--from", "2026-11-01", "--to", "2026-11-15"},
		"bad document":   {"--id", "E1<2>3", "--from", "2026-11-01", "--to", "2026-11-15"},
		"no range":       {"--id", id},
		"bad date":       {"--id", id, "--from", "2026-02-30", "--to", "2026-03-01"},
		"reversed":       {"--id", id, "--from", "2026-11-15", "--to", "2026-11-01"},
		"over 366 days":  {"--id", id, "--from", "2025-01-01", "--to", "2026-11-01"},
		"window 30s":     {"--id", id, "--from", "2026-11-01", "--to", "2026-11-15", "--window", "30s"},
		"window 25h":     {"--id", id, "--from", "2026-11-01", "--to", "2026-11-15", "--window", "25h"},
		"window garbage": {"--id", id, "--from", "2026-11-01", "--to", "2026-11-15", "--window", "soon"},
		"unknown format": {"--id", id, "--from", "2026-11-01", "--to", "2026-11-15", "--format", "pdf"},
		"extra arg":      {"--id", id, "--from", "2026-11-01", "--to", "2026-11-15", "extra"},
	} {
		r := runTrace(t, env, "", append(append([]string{}, base...), args...)...)
		lines := strings.Count(strings.TrimSpace(r.stderr), "\n") + 1
		if r.code != exitError || lines != 1 || !strings.HasPrefix(r.stderr, "passgate trace: ") {
			t.Errorf("%s: exit %d, stderr %q; want exit 2 and one line", name, r.code, r.stderr)
		}
		if strings.Contains(r.stderr, "19491231") {
			t.Errorf("%s: the error repeats the ID number: %q", name, r.stderr)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, store.FileName)); err == nil {
		t.Error("a rejected trace opened the database")
	}
}

// checkTraceJSONLNames checks that every line about the registered
// contact (hex subject) gives the masked name and ID tail, the line
// about the other contact neither, and no line the full number or name.
func checkTraceJSONLNames(t *testing.T, out, subject, id, name string) {
	t.Helper()
	if strings.Contains(out, id) || strings.Contains(out, name) {
		t.Errorf("JSON Lines hold the full ID number or name: %s", out)
	}
	named, unnamed := 0, 0
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		if rec["type"] != "check" && rec["type"] != "contact" {
			continue
		}
		switch {
		case rec["contact_subject"] == subject && rec["contact_name"] == "王*明" && rec["contact_id_tail"] == "5678":
			named++
		case rec["contact_subject"] != subject && rec["contact_name"] == "" && rec["contact_id_tail"] == "":
			unnamed++
		default:
			t.Errorf("contact line %v", rec)
		}
	}
	if named != 2 || unnamed != 2 {
		t.Errorf("%d lines name the registered contact, %d the other; want 2 and 2 (a check row and a summary each)", named, unnamed)
	}
}
