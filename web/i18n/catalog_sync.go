package i18n

func init() {
	register(map[string]Msg{
		"sync.never":         {"尚未从区级中心获取", "not yet received from the district hub"},
		"sync.waiting_label": {"待上传到区级中心的记录", "Records waiting for the district hub"},
		"sync.title":         {"区级同步", "District sync"},
		"sync.hub":           {"区级中心", "District hub"},
		"sync.appliance":     {"本机名称", "This appliance"},
		"sync.last_push":     {"最近上传", "Last upload"},
		"sync.last_pull":     {"最近获取名单", "Lists last received"},
		"sync.waiting":       {"待上传 %d 条", "%d waiting"},
		"sync.last_error":    {"最近错误", "Last error"},
		"sync.none":          {"本机独立运行，未加入区级中心。", "This appliance runs standalone: it is not enrolled with a district hub."},
		"sync.never_done":    {"从未", "never"},
		"sync.appliances":    {"已登记设备", "Enrolled appliances"},
		"sync.col.name":      {"设备", "Appliance"},
		"sync.col.state":     {"状态", "State"},
		"sync.col.contact":   {"最近联系", "Last contact"},
		"sync.col.backlog":   {"积压记录", "Backlog"},
		"sync.col.skew":      {"时钟偏差", "Clock offset"},
		"sync.col.behind":    {"未获取的吊销", "Revocations behind"},
		"sync.state.pending": {"待登记", "code not used yet"},
		"sync.state.active":  {"在用", "active"},
		"sync.state.retired": {"已停用", "retired"},
		"sync.skew_flag":     {"时钟偏差过大", "clock far off"},
		"sync.role.gate":     {"核验点", "gate"},
		"sync.role.office":   {"登记点", "office"},
		"desk.err.status_elsewhere": {"此人的健康状态已于 %s 在区内其他地方更改（%s）。请先在本机登记其当前状态，再发码。",
			"This person's status was changed elsewhere in the district on %s (%s). Record their current status here before issuing a pass."},
	})
}
