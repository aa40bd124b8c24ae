package i18n

// Camera scanning page messages.
func init() {
	register(map[string]Msg{
		"camera.title":           {"摄像头扫码", "Camera scan"},
		"camera.open":            {"用摄像头扫码", "Scan with the camera"},
		"camera.back":            {"返回核验页", "Back to the gate"},
		"camera.ready":           {"请出示通行码", "Show the pass to the camera"},
		"camera.ready_hint":      {"将通行码对准摄像头，保持稳定。", "Hold the pass steady in front of the camera."},
		"camera.starting":        {"正在打开摄像头…", "Starting the camera…"},
		"camera.scanning":        {"摄像头已开启，正在寻找通行码", "Camera on, looking for a pass"},
		"camera.paused":          {"已核验，稍后继续扫描", "Checked; scanning again shortly"},
		"camera.restart":         {"重新打开摄像头", "Restart the camera"},
		"camera.video_label":     {"摄像头画面", "Camera picture"},
		"camera.err.insecure":    {"摄像头需要 HTTPS 或 localhost 访问：请用 https:// 地址打开本页", "The camera needs HTTPS or localhost: open this page by its https:// address"},
		"camera.err.denied":      {"摄像头权限被拒绝：请在浏览器设置中允许本站使用摄像头", "Camera permission denied: allow this site to use the camera in the browser settings"},
		"camera.err.no_camera":   {"未找到摄像头", "No camera found"},
		"camera.err.unavailable": {"摄像头无法使用（可能被其他程序占用）", "The camera cannot be used (another app may be using it)"},
		"camera.err.frame":       {"画面数据无效", "The camera picture could not be read"},
		"camera.err.too_large":   {"画面过大", "The camera picture is too large"},
	})
}
