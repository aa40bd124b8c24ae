package i18n

// Trust between districts: the roots this district trusts, and the
// import of another district's trust anchor file.
func init() {
	register(map[string]Msg{
		"admin.trust":      {"区际互认", "Trust between districts"},
		"admin.trust.desc": {"导出本区根密钥、导入其他区的根密钥", "Hand out this district's root keys; trust another district's"},
		"admin.trust.intro": {
			"本区各设备信任下列根密钥签发的通行证。导入其他区的根密钥后，本区所有设备都接受该区的通行证。",
			"Every appliance of this district accepts passes chaining to the root keys below. Once another district's root is imported, every gate of this district accepts that district's passes.",
		},
		"admin.trust.col.district":    {"区", "District"},
		"admin.trust.col.key":         {"密钥", "Key"},
		"admin.trust.col.fingerprint": {"指纹 (SHA-256)", "Fingerprint (SHA-256)"},
		"admin.trust.col.added":       {"加入时间", "Added"},
		"admin.trust.own":             {"本区", "this district"},
		"admin.trust.name":            {"名称", "Name"},
		"admin.trust.export":          {"下载本区信任锚文件", "Download this district's trust anchor file"},
		"admin.trust.import":          {"导入其他区的信任锚", "Import another district's trust anchor"},
		"admin.trust.file":            {"信任锚文件", "Trust anchor file"},
		"admin.trust.paste":           {"或粘贴文件内容", "or paste its content"},
		"admin.trust.check_btn":       {"读取文件", "Read the file"},
		"admin.trust.confirm":         {"确认导入信任锚", "Confirm the trust anchor"},
		"admin.trust.compare": {
			"请通过电话或当面向对方区核对指纹，并在下面输入对方读给您的指纹。文件中的指纹不能代替这一核对。",
			"Compare the fingerprint with the other district by phone or in person, and type below the fingerprint they read out to you. The fingerprint in the file cannot replace this check.",
		},
		"admin.trust.fingerprint": {"对方读出的指纹", "Fingerprint as read out by the other district"},
		"admin.trust.import_btn":  {"信任该区的根密钥", "Trust this district's root"},
		"admin.trust.added":       {"已信任 %s 区的 %d 个根密钥；本区各设备下次同步后生效。", "District %s: %d root key(s) trusted; the district's appliances follow at their next sync."},
		"admin.trust.already":     {"%s 区的根密钥已在信任列表中。", "District %s's roots were trusted already."},
		"admin.trust.err.none":    {"请选择文件或粘贴文件内容。", "Choose a file or paste its content."},
		"admin.trust.err.file":    {"这不是有效的信任锚文件：%s", "This is not a valid trust anchor file: %s"},
		"admin.trust.err.fp_form": {"请输入 64 位十六进制指纹。", "Type the 64 hexadecimal digits of the fingerprint."},
		"admin.trust.err.fp":      {"指纹不符：不要导入此文件，并联系对方区。", "The fingerprint does not match: do not import this file, and contact the other district."},
		"admin.trust.err.own":     {"这是本区自己的信任锚。", "This is this district's own trust anchor."},
		"admin.trust.err.conflict": {
			"文件中的密钥已以其他身份保存在本机，未导入。",
			"A key of the file is held here already under another district or role; nothing was imported.",
		},
		"admin.trust.err.no_root": {"本设备没有本区根密钥的私钥，只有区级中心能导出信任锚。", "This appliance does not hold the district root's private key: only the district's hub exports the trust anchor."},
	})
}
