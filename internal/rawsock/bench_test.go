package rawsock

import (
	"net"
	"testing"
)

// BenchmarkPingPong is a round trip of one byte between a client of
// net's and an echo on a connection accepted by net (net) or by a
// Listener (rawsock).
func BenchmarkPingPong(b *testing.B) {
	for _, ours := range []bool{false, true} {
		name := "net"
		if ours {
			name = "rawsock"
		}
		b.Run(name, func(b *testing.B) {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			go func() {
				var c net.Conn
				var err error
				if ours {
					c, err = acceptOne(l)
				} else {
					c, err = l.Accept()
				}
				if err != nil {
					return
				}
				defer c.Close()
				buf := make([]byte, 1)
				for {
					if _, err := c.Read(buf); err != nil {
						return
					}
					if _, err := c.Write(buf); err != nil {
						return
					}
				}
			}()
			c, err := net.Dial("tcp", l.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			buf := make([]byte, 1)
			b.ResetTimer()
			for range b.N {
				c.Write(buf)
				if _, err := c.Read(buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
