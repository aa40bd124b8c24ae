package i18n

func init() {
	register(map[string]Msg{
		"login.title":     {"登录", "Log in"},
		"login.username":  {"用户名", "Username"},
		"login.password":  {"密码", "Password"},
		"login.submit":    {"登录", "Log in"},
		"login.failed":    {"用户名或密码错误。", "Wrong username or password."},
		"login.missing":   {"请输入用户名和密码。", "Enter your username and password."},
		"login.bad_form":  {"登录表单无效，请重试。", "The login form could not be read. Please try again."},
		"login.throttled": {"登录失败次数过多，请 %d 分钟后再试。", "Too many failed logins. Try again in %d min."},
		"lang.title":      {"语言", "Language"},
		"lang.unknown":    {"不支持该语言。", "This language is not supported."},
	})
}
