package i18n

// Reason messages: what the gate screen says for each reason code, in
// plain words. Keys are "reason." + the stable code.
func init() {
	register(map[string]Msg{
		"reason.ok":                 {"通行码有效", "Valid pass"},
		"reason.not_a_pass":         {"不是通行码", "Not a passgate pass"},
		"reason.malformed":          {"通行码损坏，无法读取", "Damaged or unreadable pass"},
		"reason.too_long":           {"扫描内容过长，不是通行码", "Scan too long to be a pass"},
		"reason.bad_signature":      {"签名无效，可能是伪造", "Invalid signature: possibly forged"},
		"reason.unknown_issuer":     {"签发机构不受信任", "Issuer not trusted"},
		"reason.issuer_expired":     {"签发机构证书已过期", "Issuer certificate expired"},
		"reason.issuer_revoked":     {"签发机构已被吊销", "Issuer revoked"},
		"reason.expired":            {"通行码已过期", "Pass expired"},
		"reason.not_yet_valid":      {"通行码尚未生效", "Pass not yet valid"},
		"reason.revoked":            {"通行码已作废", "Pass revoked"},
		"reason.paper_not_accepted": {"此处不接受纸质码", "Paper passes not accepted here"},
		"reason.status_green":       {"绿码不在允许范围", "Green not allowed by policy"},
		"reason.status_yellow":      {"黄码，禁止通行", "Yellow status"},
		"reason.status_red":         {"红码，禁止通行", "Red status"},
		"reason.test_missing":       {"无核酸检测记录", "No negative test"},
		"reason.test_too_old":       {"核酸检测已超时", "Test too old"},
		"reason.doses_missing":      {"疫苗接种剂次不足", "Not enough vaccine doses"},
		"reason.scanner_layout":     {"扫码枪键盘布局设置错误，请将扫码枪设为美式键盘 (US)", "Scanner keyboard layout is wrong: set the scanner to US keyboard"},
	})
}
