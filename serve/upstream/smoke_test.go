package upstream

import (
	"io"
	"net/http"
	"testing"
)

func TestSmoke(t *testing.T) {
	addr := startBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello "+r.Host+" "+r.RequestURI)
	}))
	f, _ := gsupFront(t, Options{}, addr)
	c := client(t)
	for i := 0; i < 3; i++ {
		resp, err := c.Get(f.URL + "/x?y=1")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Logf("%d %q %v", resp.StatusCode, b, resp.Header)
		t.Logf("%+v", f.record(t))
	}
}
