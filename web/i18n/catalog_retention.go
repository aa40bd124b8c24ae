package i18n

// Retention of pass records and audit records on the policy page.
func init() {
	register(map[string]Msg{
		"admin.policy.pass_retention":  {"通行码记录保留天数（自通行码过期起算，到期自动删除）", "Days a pass record is kept after the pass expires (then purged)"},
		"admin.policy.audit_retention": {"审计记录保留天数（到期自动删除）", "Days audit records are kept (then purged)"},
		"admin.policy.err.days_range":  {"请输入 %d 至 %d 的天数。", "Enter a number of days from %d to %d."},
	})
}
