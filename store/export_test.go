package store

import "database/sql"

// Pools exposes the writer and read pools to the tests.
func (db *DB) Pools() (w, r *sql.DB) { return db.w, db.r }

// ScanQueueLen is how many scans wait for the writer.
func (db *DB) ScanQueueLen() int { return len(db.scans) }

// SchemaSteps is the number of migrations this build knows.
var SchemaSteps = len(migrations)

// ScanCommits is how many group commits succeeded.
func (db *DB) ScanCommits() int64 { return db.scanCommits.Load() }

// LastSeenSQL is the repeat lookup, for plan tests.
const LastSeenSQL = lastSeenSQL
