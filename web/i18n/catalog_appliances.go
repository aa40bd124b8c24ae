package i18n

func init() {
	register(map[string]Msg{
		"admin.appliances":                    {"区内设备", "District appliances"},
		"admin.appliances.desc":               {"登记设备、发放登记码、停用设备", "Enrol appliances with one-time codes; retire them"},
		"admin.appliances.intro":              {"本机作为区级中心：其他设备凭一次性登记码加入本区，之后自动上传记录并获取名单。", "This appliance acts as the district hub: other appliances join with a one-time code, then send their records here and receive the lists from here."},
		"admin.appliances.from":               {"登记请求来自", "Enrolment request from"},
		"admin.appliances.issuer_sha256":      {"签发密钥 SHA-256", "Issuer key SHA-256"},
		"admin.appliances.none":               {"尚未登记任何设备。", "No appliance registered yet."},
		"admin.appliances.add":                {"登记新设备", "Register an appliance"},
		"admin.appliances.add_btn":            {"生成登记码", "Make an enrolment code"},
		"admin.appliances.role":               {"设备角色", "Role"},
		"admin.appliances.role_gate":          {"核验点：只验码，不登记人员、不发码、不改状态，不持有假名密钥", "Gate: checks passes only; registers no one, issues nothing, changes no status, holds no pseudonym key"},
		"admin.appliances.role_office":        {"登记点：可登记人员、发码（为其签发发码密钥证书），并更改其所登记人员的状态", "Office: registers people, issues passes (its issuer key is certified) and changes the status of the people it registered"},
		"admin.appliances.hours":              {"登记码有效期（小时）", "Code valid for (hours)"},
		"admin.appliances.code_for":           {"设备 %s 的登记码", "Enrolment code for %s"},
		"admin.appliances.code_once":          {"此码只显示这一次，只能使用一次，%s 前有效。", "Shown only this once; it works once, until %s."},
		"admin.appliances.code_run":           {"在新设备上（空的数据目录）运行：", "On the new appliance (an empty data directory) run:"},
		"admin.appliances.reason":             {"原因", "Reason"},
		"admin.appliances.retire":             {"停用", "Retire"},
		"admin.appliances.retired":            {"设备 %s 已停用，其发码密钥已在全区吊销。", "Appliance %s retired; its issuer key is revoked district-wide."},
		"admin.appliances.enrolled_elsewhere": {"本机已加入区级中心 %s，不能再作为中心登记设备。", "This appliance is enrolled with the hub %s, so it cannot enrol appliances itself."},
		"admin.appliances.err.name":           {"名称须为 1 到 %d 字节，不含控制字符，首尾无空格", "The name must be 1 to %d bytes, without control characters or surrounding spaces"},
		"admin.appliances.err.name_used":      {"该名称已被使用", "That name is taken"},
		"admin.appliances.err.role":           {"角色须为核验点或登记点", "The role must be gate or office"},
		"admin.appliances.err.hours":          {"有效期须为 1 到 %d 小时", "Validity must be 1 to %d hours"},
		"admin.appliances.err.https":          {"需先启用 HTTPS（passgate serve --tls-addr）：设备只通过 HTTPS 连接中心，登记码锁定中心的证书。", "Enable HTTPS first (passgate serve --tls-addr): appliances reach the hub only over HTTPS, and the code pins its certificate."},
		"admin.appliances.err.not_hub":        {"本机不能作为区级中心（已加入其他中心，或没有区根密钥）", "This appliance cannot act as the hub (it is enrolled elsewhere, or lacks the district root key)"},
		"admin.appliances.err.reason":         {"请填写停用原因（最多 500 字节）", "Give a reason for retiring (at most 500 bytes)"},
		"admin.appliances.err.unknown":        {"没有名为 %s 的设备", "No appliance is named %s"},
		"admin.appliances.err.already":        {"设备 %s 已经停用", "Appliance %s is already retired"},
	})
}
