package i18n

// Dashboard messages: the admin's picture of today.
func init() {
	register(map[string]Msg{
		"dash.title":         {"今日核验概况", "Today's checks"},
		"dash.admin_pages":   {"管理页面", "Admin pages"},
		"dash.when":          {"%s，更新于 %s（%s）", "%s, updated %s (%s)"},
		"dash.refresh":       {"，每 %d 秒自动刷新。", ", refreshes every %d s."},
		"dash.now":           {"现在 %s", "now %s"},
		"dash.checks_today":  {"今日核验", "Checks today"},
		"dash.allow":         {"通过", "Allowed"},
		"dash.deny":          {"拒绝", "Denied"},
		"dash.deny_share":    {"占 %s%%", "%s%% of checks"},
		"dash.checks":        {"核验次数", "Checks"},
		"dash.timeline":      {"每 10 分钟核验次数", "Checks per 10 minutes"},
		"dash.timeline.help": {"每根柱子是 10 分钟内的核验次数：绿色为通过，红色为拒绝；竖线为当前时间。", "Each column is the checks in 10 minutes: green allowed, red denied; the vertical line is now."},
		"dash.reasons":       {"今日拒绝原因", "Why checks were denied today"},
		"dash.places":        {"%s 以来最繁忙的地点", "Busiest places since %s"},
		"dash.sources":       {"今日各扫码来源核验次数", "Checks per scanner today"},
		"dash.at_appliance":  {"设备：%s", "appliance: %s"},
		"dash.more_sources":  {"另有 %d 个扫码来源未列出。", "%d more scanners not shown."},
		"dash.none_denied":   {"今日没有拒绝。", "No check denied today."},
		"dash.none_hour":     {"这段时间没有核验。", "No checks in this time."},
		"dash.none_today":    {"今日尚无核验。", "No checks yet today."},
		"dash.appliances":    {"各设备同步状态", "Appliances"},
		"dash.col.lists_age": {"名单时效", "Lists age"},
		"dash.never":         {"从未联系", "never"},
		"dash.stale":         {"（已过期）", "(stale)"},
	})
}
