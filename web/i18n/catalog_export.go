package i18n

// Export messages: the admin page that exports the scan log, passes
// issued, status changes and the audit trail.
func init() {
	register(map[string]Msg{
		"admin.export":              {"导出数据", "Export data"},
		"admin.export.desc":         {"按时间范围导出核验记录、已签发通行码、状态变更或审计记录，供 Excel 或其他系统使用。", "Export the scan log, passes issued, status changes or the audit trail for a time range, for Excel or other systems."},
		"admin.export.kind":         {"内容", "Records"},
		"admin.export.kind.scans":   {"核验记录", "Scan log"},
		"admin.export.kind.passes":  {"已签发通行码", "Passes issued"},
		"admin.export.kind.status":  {"健康状态变更", "Status changes"},
		"admin.export.format":       {"格式", "Format"},
		"admin.export.format.csv":   {"CSV（Excel 可直接打开）", "CSV (opens in Excel)"},
		"admin.export.format.xlsx":  {"Excel 工作簿（XLSX）", "Excel workbook (XLSX)"},
		"admin.export.format.jsonl": {"JSON Lines（供其他系统导入）", "JSON Lines (for other systems)"},
		"admin.export.from":         {"开始（含）：日期 2026-11-01 或带时区的时间", "From (included): a date such as 2026-11-01 or a time with offset"},
		"admin.export.to":           {"结束（不含）：日期或带时区的时间", "To (excluded): a date or a time with offset"},
		"admin.export.source":       {"来源（设备或扫码枪名称，可留空）", "Source (device or scanner name, optional)"},
		"admin.export.decision":     {"核验结果", "Decision"},
		"admin.export.any":          {"全部", "Any"},
		"admin.export.allow":        {"通过", "Allowed"},
		"admin.export.deny":         {"拒绝", "Denied"},
		"admin.export.reason":       {"原因；审计记录为操作代码（可留空）", "Reason; for the audit trail, the action code (optional)"},
		"admin.export.hint": {
			"导出在设备上后台进行，下一页显示进度，可随时取消，完成后下载文件。来源与核验结果仅适用于核验记录；原因适用于核验记录和状态变更，审计记录则填操作代码（login、login_failed、user_created、user_disabled、user_enabled、user_role、user_password、status_changed、pass_issued、policy_changed、export、trace、purge）。以 = + - @ 开头的内容在 CSV 和 XLSX 中前面加 ' 以防被当作公式。",
			"The export runs on the appliance in the background: the next page shows its progress, can cancel it, and offers the file when done. Source and decision apply to the scan log only; reason to the scan log and status changes, and for the audit trail it is the action code (login, login_failed, user_created, user_disabled, user_enabled, user_role, user_password, status_changed, pass_issued, policy_changed, export, trace, purge). Values starting with = + - @ get a leading ' in CSV and XLSX so they are not taken for formulas.",
		},
		"admin.export.submit":     {"导出", "Export"},
		"admin.export.err.kind":   {"请选择要导出的内容。", "Choose what to export."},
		"admin.export.err.format": {"请选择 CSV、XLSX 或 JSON Lines。", "Choose CSV, XLSX or JSON Lines."},
		"admin.export.err.time":   {"请填写日期（2026-11-01）或带时区的时间（2026-11-01T08:00:00+08:00）。", "Enter a date (2026-11-01) or a time with offset (2026-11-01T08:00:00+08:00)."},
		"admin.export.err.range":  {"开始必须早于结束，且范围不超过 %d 天。", "From must be before To, and the range at most %d days."},
		"admin.export.err.filter": {"此筛选条件不适用于所选内容：%s", "This filter does not apply to the chosen records: %s"},
	})
}
