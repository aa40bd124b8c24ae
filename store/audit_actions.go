package store

import (
	"context"
	"database/sql"
	"time"
)

// Audit actions of what happens around the data rather than to it: who
// copied it, looked into it or reset it. Stable codes, like the others.
const (
	// AuditBackup: a copy of the database (every key in it) was started.
	AuditBackup = "backup"
	// AuditRestoreDetected: at start the database was older than the
	// newest checkpoint of its trail, as after a restore from a backup.
	AuditRestoreDetected = "restore_detected"
	// AuditDeviceAdded and AuditDeviceRevoked: a scan API token.
	AuditDeviceAdded   = "device_added"
	AuditDeviceRevoked = "device_revoked"
	// AuditFirstAdmin: the first admin account, made at setup.
	AuditFirstAdmin = "first_admin"
	// AuditPersonLookup: a person's record was opened by pseudonym.
	AuditPersonLookup = "person_lookup"
	// AuditExportStarted: an export began; AuditExport follows when it
	// completes, so an export cut short still leaves its first record.
	AuditExportStarted = "export_started"
)

// auditFirstAdmin records the account made with the district: whoever
// holds it can do everything, so its making is on record like any other
// account's.
func auditFirstAdmin(ctx context.Context, tx *sql.Tx, admin *User, now time.Time) error {
	return appendAudit(ctx, tx, &AuditRecord{Actor: "setup", Action: AuditFirstAdmin, Subject: admin.Username,
		Detail: AuditDetail(map[string]string{"role": string(admin.Role)})}, now)
}
