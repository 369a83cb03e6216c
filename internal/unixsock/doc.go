// Package unixsock binds and dials the UNIX stream sockets gsup owns (the
// control socket and the front's unix: binds) and says who is at the other
// end of a connection. Linux only.
//
// Listen never widens, follows or clobbers:
//
//   - The mode is set with fchmod on the socket before bind (in
//     net.ListenConfig.Control), so the file never exists with a wider mode,
//     whatever the process umask; the umask can only narrow it at bind, and
//     the asked mode is then restored through an O_PATH descriptor of the
//     file, never through a path that could have become a symlink. Owner and
//     Group chown it the same way.
//   - A path that holds a symlink, a regular file or anything else that is
//     not a socket is refused and left alone. A socket file nobody accepts on
//     (a killed process left it) is removed; one a live process accepts on is
//     refused with an error wrapping ErrInUse.
//   - A path longer than a sockaddr_un holds (107 bytes) is bound, and
//     dialed by Dial, as /proc/self/fd/N/NAME, N a descriptor of its folder;
//     only a file name too long even for that is refused.
//   - Abstract names (@name) are refused: they have no file, so no mode, and
//     anyone in the network namespace could connect.
//
// Listener.Close removes the socket file only while it is still the one
// Listen bound (same device and inode).
//
// RuntimeDirs lists the folders where gsup keeps sockets only its uid may
// reach; MakePrivateDir and CheckPrivateDir refuse one that is a symlink,
// another uid's, or open to anyone else (mode other than 0700).
//
// PeerCred reads a connection's peer from the kernel: SO_PEERCRED's uid,
// gid and pid, and SO_PEERGROUPS's supplementary groups, as they were when
// the peer connected.
package unixsock
