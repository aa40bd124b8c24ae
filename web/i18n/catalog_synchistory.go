package i18n

// The notice that the hub's history went backwards (a hub restored from
// a backup) and the appliance read the whole feed again.
func init() {
	register(map[string]Msg{
		"sync.history_changed": {"中心历史变更于", "Hub history changed at"},
		"sync.history_reread":  {"已重新读取全部名单", "the feed was re-read"},
	})
}
