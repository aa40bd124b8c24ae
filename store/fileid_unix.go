//go:build unix

package store

import (
	"fmt"
	"os"
	"syscall"
)

// fileIdentity names the file behind fi by device and inode: a copy put
// in place of a file is a new inode, whatever its content says.
func fileIdentity(fi os.FileInfo) string {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return ""
	}
	return fmt.Sprintf("%d:%d", st.Dev, st.Ino)
}
