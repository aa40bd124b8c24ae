package i18n

// HTTPS messages: the appliance's local CA and how to install it on the
// tablets that scan with their cameras.
func init() {
	register(map[string]Msg{
		"admin.ca":      {"HTTPS 证书", "HTTPS certificate"},
		"admin.ca.desc": {"下载本机 CA 证书并安装到平板上，平板即可用摄像头扫码。", "Download the appliance's CA certificate and install it on tablets so they can scan with their cameras."},
		"admin.ca.none": {
			"本设备没有自建 CA：HTTPS 未开启，或使用的是管理员提供的证书，无需在平板上安装本机证书。",
			"This appliance has no local CA: HTTPS is off, or it uses a certificate the admin provided, so there is nothing to install on the tablets.",
		},
		"admin.ca.howto": {
			"平板摄像头只在安全连接（HTTPS）下可用。请在平板上以管理员身份登录后打开 /admin/ca.crt 下载证书（%s），在系统设置中安装为 CA 证书，然后用 https:// 地址打开核验页。安装前请核对证书指纹 SHA-256：%s",
			"Tablet cameras work only over a secure connection (HTTPS). On the tablet, log in as an admin and open /admin/ca.crt to download the certificate (%s), install it as a CA certificate in the system settings, then open the gate page at its https:// address. Before installing, compare the certificate's SHA-256 fingerprint: %s",
		},
	})
}
