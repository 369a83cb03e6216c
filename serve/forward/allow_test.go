package forward

import (
	"net/netip"
	"strings"
	"testing"
)

func TestParseAllowList(t *testing.T) {
	tests := []struct {
		name    string
		entries []string
		want    string // String() of the result
		all     bool
		err     string // substring of the error; "" = no error
	}{
		{name: "gunicorn default", entries: []string{"127.0.0.1", "::1"}, want: "127.0.0.1, ::1"},
		{name: "one entry with commas", entries: []string{"127.0.0.1,::1"}, want: "127.0.0.1, ::1"},
		{name: "commas and spaces", entries: []string{" 127.0.0.1 ,\t::1  10.0.0.0/8,,"}, want: "127.0.0.1, ::1, 10.0.0.0/8"},
		{name: "cidrs", entries: []string{"10.0.0.0/8", "2001:db8::/32", "0.0.0.0/0", "::/0"}, want: "10.0.0.0/8, 2001:db8::/32, 0.0.0.0/0, ::/0"},
		{name: "single-address cidr", entries: []string{"192.0.2.7/32", "2001:db8::1/128"}, want: "192.0.2.7, 2001:db8::1"},
		{name: "star", entries: []string{"*"}, want: "*", all: true},
		{name: "star among others", entries: []string{"10.0.0.1, *"}, want: "*, 10.0.0.1", all: true},
		{name: "empty", entries: []string{""}, want: ""},
		{name: "nothing", entries: nil, want: ""},
		{name: "mapped address", entries: []string{"::ffff:10.0.0.1"}, want: "10.0.0.1"},
		{name: "mapped network", entries: []string{"::ffff:10.0.0.0/104"}, want: "10.0.0.0/8"},
		{name: "host bits v4", entries: []string{"127.0.0.1", "192.168.1.1/24"}, err: `"192.168.1.1/24": host bits are set (the network is 192.168.1.0/24)`},
		{name: "host bits v6", entries: []string{"2001:db8::1/64"}, err: `"2001:db8::1/64": host bits are set (the network is 2001:db8::/64)`},
		{name: "not an address", entries: []string{"localhost"}, err: `"localhost": not an IP address or CIDR network`},
		{name: "bad prefix length", entries: []string{"10.0.0.0/33"}, err: `"10.0.0.0/33"`},
		{name: "zone", entries: []string{"fe80::1%eth0"}, err: `"fe80::1%eth0": IPv6 zones are not allowed`},
		{name: "short mapped network", entries: []string{"::ffff:0.0.0.0/80"}, err: `host bits are set (the network is ::/80)`},
		{name: "mapped network /96", entries: []string{"::ffff:0.0.0.0/96"}, want: "0.0.0.0/0"},
		{name: "error names the item, not the whole entry", entries: []string{"127.0.0.1, 1.2.3"}, err: `allow list entry "1.2.3"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := ParseAllowList(tt.entries)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want one containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := a.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
			if a.All() != tt.all {
				t.Errorf("All() = %v", a.All())
			}
		})
	}
}

func TestAllows(t *testing.T) {
	list := mustParse(t, "127.0.0.1, ::1, 10.0.0.0/8, 2001:db8::/32, fe80::1")
	star := mustParse(t, "*")
	empty := mustParse(t, "")
	tests := []struct {
		list *AllowList
		ip   string // "" = the zero Addr
		want bool
	}{
		{list, "127.0.0.1", true},
		{list, "127.0.0.2", false},
		{list, "::1", true},
		{list, "::2", false},
		{list, "::ffff:127.0.0.1", true}, // dual-stack listener: Gunicorn's pitfall
		{list, "10.1.2.3", true},
		{list, "::ffff:10.1.2.3", true},
		{list, "11.0.0.1", false},
		{list, "::ffff:11.0.0.1", false},
		{list, "2001:db8::5", true},
		{list, "2001:db8:ffff::5", true},
		{list, "2001:db9::", false},
		{list, "fe80::1%eth0", true}, // zone ignored
		{list, "", false},
		{star, "203.0.113.9", true},
		{star, "2001:db8::9", true},
		{star, "", true},
		{empty, "127.0.0.1", false},
		{empty, "", false},
		{nil, "127.0.0.1", false},
	}
	for _, tt := range tests {
		var ip netip.Addr
		if tt.ip != "" {
			ip = netip.MustParseAddr(tt.ip)
		}
		if got := tt.list.Allows(ip); got != tt.want {
			t.Errorf("[%v].Allows(%q) = %v, want %v", tt.list, tt.ip, got, tt.want)
		}
	}
	if (*AllowList)(nil).All() {
		t.Error("nil.All() = true")
	}
}

func FuzzParseAllowList(f *testing.F) {
	for _, s := range []string{
		"127.0.0.1,::1", "*", "10.0.0.0/8 192.168.0.0/16", "192.168.1.1/24", "::ffff:10.0.0.0/104",
		"fe80::1%eth0", "", ",,, ", "2001:db8::/32\n*", "1.2.3.4/0", "::/0", "0.0.0.0/0",
	} {
		f.Add(s, "127.0.0.1")
	}
	f.Fuzz(func(t *testing.T, entries, ip string) {
		a, err := ParseAllowList(strings.Split(entries, "\n"))
		if err != nil {
			if a != nil {
				t.Fatalf("non-nil list with error %v", err)
			}
			if !strings.Contains(err.Error(), "allow list entry ") {
				t.Fatalf("error does not name the entry: %v", err)
			}
			return
		}
		// The canonical form parses back to the same list.
		b, err := ParseAllowList([]string{a.String()})
		if err != nil {
			t.Fatalf("String() %q does not parse: %v", a.String(), err)
		}
		if b.String() != a.String() || b.All() != a.All() {
			t.Fatalf("round trip %q -> %q", a.String(), b.String())
		}
		// Every listed network allows its own address, mapped or not.
		for _, p := range a.prefixes {
			if !p.IsValid() || p != p.Masked() || p.Addr().Is4In6() || p.Addr().Zone() != "" {
				t.Fatalf("stored prefix %v is not canonical", p)
			}
			if !a.Allows(p.Addr()) {
				t.Fatalf("%v does not allow %v", a, p.Addr())
			}
			if p.Addr().Is4() && !a.Allows(netip.AddrFrom16(p.Addr().As16())) {
				t.Fatalf("%v does not allow the mapped form of %v", a, p.Addr())
			}
		}
		if addr, err := netip.ParseAddr(ip); err == nil {
			_ = a.Allows(addr)
		}
		if a.All() && !a.Allows(netip.Addr{}) {
			t.Fatal("* does not allow the zero address")
		}
	})
}

func mustParse(t *testing.T, entries ...string) *AllowList {
	t.Helper()
	a, err := ParseAllowList(entries)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
