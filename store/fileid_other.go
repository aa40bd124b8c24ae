//go:build !unix

package store

import "os"

// fileIdentity is unknown here: the epoch file's epoch alone tells a
// restored copy.
func fileIdentity(os.FileInfo) string { return "" }
