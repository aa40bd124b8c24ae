package i18n

// Warnings about the audit trail on the status page.
func init() {
	register(map[string]Msg{
		"admin.status.audit_warning": {"审计记录告警：审计记录可能已被篡改、回滚或从备份恢复。请立即核查。", "Audit trail warning: the audit trail may have been tampered with, rolled back or restored from a backup. Check it now."},
	})
}
