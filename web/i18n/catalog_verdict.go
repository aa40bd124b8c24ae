package i18n

// What the issuing desk says a gate will answer for a pass before it is
// issued, and how printed cards state their validity under the policy.
func init() {
	register(map[string]Msg{
		"verdict.deny":          {"此码在本场所将被拒绝：%s", "This pass will be refused here: %s"},
		"verdict.allow":         {"此码在本场所可通行", "This pass will be accepted here"},
		"verdict.record_test":   {"请先录入核酸结果", "Record the test first"},
		"verdict.issue_anyway":  {"仍要发放的，将得到一张会被拒绝的通行码。", "Issuing anyway gives a pass the gate will refuse."},
		"verdict.test_line":     {"核酸 %s，%d 小时内有效", "Test %s, valid for %d hours"},
		"verdict.test_sampled":  {"核酸 %s", "Test %s"},
		"verdict.reprint":       {"核酸过期后凭新结果重新打印", "Reprint with a new test once the test is too old"},
		"verdict.skipped":       {"以下 %d 人未打印：其通行码在本场所将被拒绝", "%d people not printed: their passes would be refused here"},
		"verdict.elsewhere":     {"无法判断：%s", "Cannot tell: %s"},
		"desk.find_check_digit": {"身份证号码校验位不符（可能输错），请核对。确为校验位有误的旧号码时，可在下方勾选确认后登记。", "The ID number's check digit does not match (mistyped?). If it is a legacy number with a wrong check digit, confirm it below to register it."},
		"desk.allow_bad_digit":  {"确认：这是校验位有误的旧身份证号码（已核对证件原件）", "Confirm: this is a legacy ID number with a wrong check digit (checked against the card)"},
		"desk.status_voided":    {"颜色未变（%s）：之前发放的通行码已全部作废，可重新发放。", "Colour unchanged (%s): every earlier pass is now void; issue a new one."},
	})
}
