package i18n

// How old an enrolled appliance's lists may grow before the gate warns.
func init() {
	register(map[string]Msg{
		"admin.policy.stale_after":     {"名单多久未更新即在闸机上提示（秒）", "Warn at the gate when lists are older than (seconds)"},
		"admin.policy.err.stale_after": {"请填写 %d 到 %d 之间的整数秒。", "Enter whole seconds from %d to %d."},
		"gate.lists_old":               {"名单已 %d 分钟未更新", "Lists %d minutes old"},
		"gate.lists_old_s":             {"名单已 %d 秒未更新", "Lists %d seconds old"},
		// Draining an appliance before retiring it.
		"admin.appliances.drain":     {"停止发码（准备停用）", "Drain (before retiring)"},
		"admin.appliances.draining":  {"设备 %s 将不再发码；待其数据全部送达后再停用。", "Appliance %s issues no new passes; retire it once what it holds has arrived."},
		"admin.appliances.err.drain": {"设备 %s 尚未完成登记或已在准备停用", "Appliance %s is not enrolled yet or is already draining"},
		"sync.state.draining":        {"准备停用", "draining"},
		"desk.err.draining":          {"本设备正由区级中心停用（准备停用中），不再发放新通行码；请到其他办理点或区级中心办理。", "This appliance is being retired by the district hub (draining): it issues no new passes. Issue at another office or the hub."},
	})
}
