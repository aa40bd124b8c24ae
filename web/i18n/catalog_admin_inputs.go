package i18n

func init() {
	register(map[string]Msg{
		"admin.inputs":               {"本机扫码枪", "Scanners on this appliance"},
		"admin.inputs.desc":          {"本机串口与键盘扫码枪", "Serial and keyboard scanners on this appliance"},
		"admin.inputs.intro":         {"本机直接读取的串口扫码枪和键盘扫码枪。添加或移除后立即生效，无需重启。", "Serial and keyboard scanners this appliance reads itself. Changes take effect at once, without a restart."},
		"admin.inputs.col.kind":      {"类型", "Kind"},
		"admin.inputs.col.spec":      {"设备路径与参数", "Device path and options"},
		"admin.inputs.kind.serial":   {"串口（USB CDC-ACM）", "serial (USB CDC-ACM)"},
		"admin.inputs.kind.evdev":    {"键盘扫码枪（evdev）", "keyboard wedge (evdev)"},
		"admin.inputs.from_flags":    {"由启动参数配置", "set on the command line"},
		"admin.inputs.remove":        {"移除", "Remove"},
		"admin.inputs.add":           {"添加扫码设备", "Add a scanner"},
		"admin.inputs.add_btn":       {"添加", "Add"},
		"admin.inputs.added":         {"已添加扫码设备 %s。", "Scanner %s added."},
		"admin.inputs.removed":       {"已移除扫码设备 %s。", "Scanner %s removed."},
		"admin.inputs.err.name":      {"请输入 1 至 64 个字符的名称（字母、数字、-、_、.、:）。", "Give a name of 1 to 64 letters, digits, -, _, . or :."},
		"admin.inputs.err.name_used": {"已有同名设备。", "A scanner with this name exists."},
		"admin.inputs.err.kind":      {"请选择类型。", "Choose a kind."},
		"admin.inputs.err.spec":      {"设备配置无效：%s", "Invalid device setting: %s"},
		"admin.inputs.err.not_found": {"没有这个扫码设备。", "No such scanner."},
	})
}
