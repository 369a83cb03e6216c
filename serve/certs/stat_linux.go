package certs

import (
	"os"
	"syscall"
)

// statIno adds the inode to st: a renamed-over file of the same size and
// time is still seen to change.
func statIno(fi os.FileInfo, st stamp) stamp {
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		st.ino = sys.Ino
	}
	return st
}
