package i18n

// The audit page: reading and verifying the trail.
func init() {
	register(map[string]Msg{
		"admin.audit":                         {"审计记录", "Audit trail"},
		"admin.audit.desc":                    {"按时间、操作人和操作查看审计记录，并立即校验记录是否被篡改。", "Read the audit trail by time, actor and action, and check it for tampering now."},
		"admin.audit.intro":                   {"最新的记录在前。日期指辖区时区（%s）的零点，结束日期不含。", "Newest first. A date means midnight in the district's time zone (%s); the end date is excluded."},
		"admin.audit.from":                    {"起始（日期或 RFC 3339 时间）", "From (a date or an RFC 3339 time)"},
		"admin.audit.to":                      {"截止（不含）", "To (excluded)"},
		"admin.audit.actor":                   {"操作人", "Actor"},
		"admin.audit.action":                  {"操作", "Action"},
		"admin.audit.any":                     {"全部", "Any"},
		"admin.audit.filter":                  {"筛选", "Filter"},
		"admin.audit.none":                    {"没有符合条件的记录。", "No record matches."},
		"admin.audit.next":                    {"下一页（更早）", "Next page (older)"},
		"admin.audit.col.seq":                 {"序号", "No."},
		"admin.audit.col.at":                  {"时间", "Time"},
		"admin.audit.col.subject":             {"对象", "Subject"},
		"admin.audit.col.detail":              {"详情", "Detail"},
		"admin.audit.err.action":              {"未知的操作。", "Unknown action."},
		"admin.audit.err.actor":               {"操作人名称过长。", "Actor name too long."},
		"admin.audit.err.time":                {"请输入日期（2026-12-01）或 RFC 3339 时间。", "Enter a date (2026-12-01) or an RFC 3339 time."},
		"admin.audit.err.range":               {"起始须早于截止。", "From must be before To."},
		"admin.audit.err.before":              {"分页参数无效，请从第一页重新开始。", "Invalid page; start again from the first page."},
		"admin.audit.verify":                  {"立即校验", "Verify now"},
		"admin.audit.verify.ok":               {"审计记录完整：已校验 %d 条记录。", "Audit trail intact: %d records checked."},
		"admin.audit.verify.broken":           {"审计记录已被破坏！", "Audit trail BROKEN!"},
		"admin.audit.verify.at":               {"校验时间", "Checked at"},
		"admin.audit.verify.tree":             {"记录树", "Tree"},
		"admin.audit.verify.tree_value":       {"%d 条记录，根 %s", "%d records, root %s"},
		"admin.audit.verify.checkpoint":       {"对照的签名检查点", "Signed checkpoint verified against"},
		"admin.audit.verify.checkpoint_value": {"%d 条记录，%s，根 %s", "%d records, %s, root %s"},
		"admin.audit.verify.no_checkpoint":    {"尚无签名检查点：仅校验了记录链。", "No signed checkpoint yet: only the chain was checked."},
	})
}
