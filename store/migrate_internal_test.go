package store

import (
	"context"
	"database/sql"
	"testing"

	_ "modernc.org/sqlite"
)

// TestMigrate_FailedStepLeavesFileAsItWas: the pending steps apply as
// one transaction, so an upgrade that fails part-way leaves the file at
// its old version with none of the new steps' objects, and the next
// start with a good build upgrades it whole.
func TestMigrate_FailedStepLeavesFileAsItWas(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	all := migrations
	defer func() { migrations = all }()
	old := len(all) - 3
	migrations = all[:old]
	db, err := Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()

	migrations = append(append([]string{}, all...), `CREATE TABLE upgrade_probe (x INTEGER) STRICT; SELECT no_such_function();`)
	if _, err := Open(ctx, dir); err == nil {
		t.Fatal("an upgrade with a failing step opened")
	}
	raw, err := sql.Open("sqlite", "file:"+dir+"/"+FileName)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	var version, probes int
	if err := raw.QueryRow("PRAGMA user_version").Scan(&version); err != nil {
		t.Fatal(err)
	}
	if err := raw.QueryRow(`SELECT count(*) FROM sqlite_schema WHERE name = 'upgrade_probe'`).Scan(&probes); err != nil {
		t.Fatal(err)
	}
	if version != old || probes != 0 {
		t.Fatalf("after a failed upgrade: version %d (want %d), probe table present %d", version, old, probes)
	}

	migrations = all
	db, err = Open(ctx, dir)
	if err != nil {
		t.Fatalf("the good build does not upgrade the file: %v", err)
	}
	defer db.Close()
	var v int
	if err := db.r.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		t.Fatal(err)
	}
	if v != len(all) {
		t.Fatalf("version %d after the upgrade, want %d", v, len(all))
	}
}
