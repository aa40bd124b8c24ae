package i18n

// Contact tracing messages: the admin form, the results page and its
// download.
func init() {
	register(map[string]Msg{
		"admin.trace":         {"密接追踪", "Contact tracing"},
		"admin.trace.desc":    {"按证件号码查询某人在一段时间内的全部核验记录，以及每次核验前后同一地点被核验的其他人。", "Find every check of a person in a time range, and everyone else checked at the same place around each of those checks."},
		"admin.trace.results": {"密接追踪结果", "Contact tracing results"},
		"admin.trace.id":      {"证件号码（身份证、护照或其他证件）", "ID number (mainland ID, passport or other document)"},
		"admin.trace.window":  {"前后时间窗口（分钟，1–1440）", "Window before and after each check (minutes, 1–1440)"},
		"admin.trace.hint": {
			"证件号码只用于计算假名，不会保存、不会写入日志或审计记录；每次查询都会记入审计日志（查询人、假名、时间范围和结果数量）。",
			"The ID number is only used to compute the pseudonym; it is not stored, logged or put in the audit trail. Every query is recorded in the audit trail (who, pseudonym, range and result counts).",
		},
		"admin.trace.submit":           {"查询", "Trace"},
		"admin.trace.again":            {"新的查询", "New query"},
		"admin.trace.span":             {"时间范围 %s 至 %s，前后 %s 分钟", "From %s to %s, within ±%s minutes"},
		"admin.trace.counts":           {"本人核验 %d 次；密接 %d 人，共 %d 次重叠。", "%d checks of the person; %d contacts in %d overlaps."},
		"admin.trace.truncated":        {"结果过多，已截断为每部分最多 %d 行，汇总不完整。请缩小时间范围。", "Too many results: each part was cut at %d rows and the summary is incomplete. Narrow the range."},
		"admin.trace.truncated.counts": {"另有 %d 次本人核验、%d 条密接记录未列出；下载的文件同样注明截断。", "%d more checks of the person and %d more contact rows are not listed; the download says so too."},
		"admin.trace.cut":              {"截断：另有 %d 条未列出", "cut off: %d more not listed"},
		"admin.trace.col.name":         {"姓名（脱敏）", "Name (masked)"},
		"admin.trace.col.id_tail":      {"证件尾号", "ID ending"},
		"admin.trace.none":             {"此时间范围内没有此人的核验记录。", "No checks of this person in this range."},
		"admin.trace.checks":           {"本人核验记录", "Checks of the person"},
		"admin.trace.overlaps":         {"同一地点前后被核验的人", "Others checked at the same place"},
		"admin.trace.summary":          {"密接汇总", "Contacts summary"},
		"admin.trace.col.time":         {"时间", "Time"},
		"admin.trace.col.source":       {"地点（来源）", "Place (source)"},
		"admin.trace.col.decision":     {"结果", "Decision"},
		"admin.trace.col.reason":       {"原因", "Reason"},
		"admin.trace.col.contacts":     {"密接次数", "Contacts"},
		"admin.trace.col.check":        {"本人核验时间", "Person's check"},
		"admin.trace.col.subject":      {"假名", "Pseudonym"},
		"admin.trace.col.offset":       {"时间差（分:秒）", "Offset (min:s)"},
		"admin.trace.col.overlaps":     {"重叠次数", "Overlaps"},
		"admin.trace.col.first":        {"最早", "First"},
		"admin.trace.col.last":         {"最晚", "Last"},
		"admin.trace.col.places":       {"地点", "Places"},
		"admin.trace.decision.allow":   {"通过", "Allowed"},
		"admin.trace.decision.deny":    {"拒绝", "Denied"},
		"admin.trace.download":         {"下载结果", "Download results"},
		"admin.trace.err.window":       {"时间窗口须为 %d 到 %d 分钟。", "The window must be %d to %d minutes."},
		"admin.trace.err.range":        {"开始必须早于结束，且范围不超过 %d 天。", "From must be before To, and the range at most %d days."},
		"admin.trace.err.subject":      {"查询参数无效，请重新查询。", "The query is not valid; run it again."},
	})
}
