package i18n

// Background export messages: the page that shows an export's progress,
// cancels it and offers its file, and the audit trail as an export kind.
func init() {
	register(map[string]Msg{
		"admin.export.kind.audit":         {"审计记录", "Audit trail"},
		"admin.exportjob":                 {"导出进度", "Export progress"},
		"admin.exportjob.list":            {"我的导出", "My exports"},
		"admin.exportjob.back":            {"返回导出", "Back to export"},
		"admin.exportjob.state.running":   {"正在导出……", "Exporting…"},
		"admin.exportjob.state.done":      {"导出完成。", "Export complete."},
		"admin.exportjob.state.failed":    {"导出失败。", "Export failed."},
		"admin.exportjob.state.cancelled": {"导出已取消，文件已删除。", "Export cancelled; the file was deleted."},
		"admin.exportjob.rows":            {"已写入 %d / %d 行", "%d of %d rows written"},
		"admin.exportjob.done":            {"共 %d 行。", "%d rows."},
		"admin.exportjob.cancel":          {"取消导出", "Cancel export"},
		"admin.exportjob.refresh":         {"刷新", "Refresh"},
		"admin.exportjob.download":        {"下载文件", "Download file"},
		"admin.exportjob.keep": {
			"文件含健康数据：下载 10 分钟后或导出 1 小时后自动删除，设备重启时也会删除。",
			"The file holds health data: it is deleted 10 minutes after download or 1 hour after the export, and when the appliance restarts.",
		},
		"admin.exportjob.discard": {"删除文件", "Delete file"},
		"admin.exportjob.failed":  {"导出未能完成，请重试；如仍失败请查看设备日志。", "The export could not be completed. Try again; if it fails again, see the appliance log."},
		"admin.exportjob.again":   {"再导出一份", "Start another export"},
		"admin.exportjob.gone":    {"没有这个导出：它可能已过期、已被删除，或属于其他管理员。", "No such export: it may have expired or been deleted, or belong to another admin."},
		"admin.exportjob.err.busy": {
			"已有 %d 个导出正在进行，请等其中一个完成或取消后再试。",
			"%d exports are already running. Wait for one to finish or cancel one, then try again.",
		},
	})
}
