package i18n

// How old an enrolled appliance's lists may grow before the gate warns.
func init() {
	register(map[string]Msg{
		"admin.policy.stale_after":     {"名单多久未更新即在闸机上提示（秒）", "Warn at the gate when lists are older than (seconds)"},
		"admin.policy.err.stale_after": {"请填写 %d 到 %d 之间的整数秒。", "Enter whole seconds from %d to %d."},
		"gate.lists_old":               {"名单已 %d 分钟未更新", "Lists %d minutes old"},
		"gate.lists_old_s":             {"名单已 %d 秒未更新", "Lists %d seconds old"},
	})
}
