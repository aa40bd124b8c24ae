package i18n

func init() {
	register(map[string]Msg{
		"inputs.title":         {"本机扫码枪", "Scanners on this appliance"},
		"inputs.none":          {"未配置串口或键盘扫码枪。", "No serial or keyboard scanners are configured."},
		"inputs.col.name":      {"设备", "Device"},
		"inputs.col.state":     {"状态", "State"},
		"inputs.col.last_read": {"最近读取", "Last read"},
		"inputs.col.errors":    {"错误", "Errors"},
		"inputs.connected":     {"已连接", "connected"},
		"inputs.disconnected":  {"未连接", "not connected"},
		"inputs.never":         {"尚未读取", "never"},
		// A keyboard-wedge scanner typing without a line end reads
		// nothing at all; staff must see why.
		"inputs.unterminated": {"收到 %d 个没有结束符的按键，未能读码：请将扫码枪后缀设为回车 (Enter)", "%d keys received without a line end, nothing read: set the scanner's suffix to Enter"},
	})
}
