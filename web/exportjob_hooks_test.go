package web

import "time"

// SetExportRun replaces export.Run for s's background exports, so tests
// can hold an export at a known point. Call it before the first export.
func (s *Server) SetExportRun(run exportRunFunc) { s.exports.run = run }

// SetExportKeep shortens how long s keeps finished export files (never
// downloaded, and after a download). Call it before the first export.
func (s *Server) SetExportKeep(keep, afterFetch time.Duration) {
	s.exports.keep, s.exports.keepAfterFetch = keep, afterFetch
}
