package conns

import "testing"

func TestDefaultMax(t *testing.T) {
	for _, c := range []struct {
		limit uint64
		want  int
	}{
		{1048575, 1048575 - Reserve},
		{1024, 1024 - Reserve},
		{512, 256},
		{256, 128},
		{20, 10},
		{1, 1},
		{0, 1},
	} {
		if got := DefaultMax(c.limit); got != c.want {
			t.Errorf("DefaultMax(%d) = %d, want %d", c.limit, got, c.want)
		}
	}
}
