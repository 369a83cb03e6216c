package forward

import (
	"fmt"
	"net/netip"
	"strings"
	"unicode"
)

// AllowList is a set of IP addresses and networks, or everyone ("*").
// It is built once by ParseAllowList and never changed, so it is safe for
// concurrent use. A nil *AllowList allows nobody.
type AllowList struct {
	all      bool
	prefixes []netip.Prefix
}

// ParseAllowList parses allow-list entries: IPv4 or IPv6 addresses, CIDR
// networks, or "*" (everyone). An entry may hold several items separated by
// commas and/or white space ("127.0.0.1, ::1"), as FORWARDED_ALLOW_IPS
// does; empty items are skipped, so no entries at all make a list that
// allows nobody.
//
// Networks are strict: "192.168.1.1/24" has host bits set and is an error
// that names the entry and suggests the network, as Gunicorn refuses it.
// Zoned addresses ("fe80::1%eth0") are refused; peers are matched without
// their zone. IPv4-mapped IPv6 entries ("::ffff:10.0.0.1",
// "::ffff:10.0.0.0/104") are stored as the IPv4 address or network they
// map, so they match the unmapped peers Allows compares.
func ParseAllowList(entries []string) (*AllowList, error) {
	a := &AllowList{}
	for _, entry := range entries {
		items := strings.FieldsFunc(entry, func(r rune) bool { return r == ',' || unicode.IsSpace(r) })
		for _, item := range items {
			if item == "*" {
				a.all = true
				continue
			}
			p, err := parseItem(item)
			if err != nil {
				return nil, err
			}
			a.prefixes = append(a.prefixes, p)
		}
	}
	return a, nil
}

func parseItem(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("allow list entry %q: not an IP address or CIDR network", s)
		}
		if m := p.Masked(); m != p {
			return netip.Prefix{}, fmt.Errorf("allow list entry %q: host bits are set (the network is %s)", s, m)
		}
		if a := p.Addr(); a.Is4In6() {
			// Masked: the ::ffff: bits are in the prefix, so Bits() >= 96.
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
		}
		return p, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("allow list entry %q: not an IP address or CIDR network", s)
	}
	if a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("allow list entry %q: IPv6 zones are not allowed", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// Allows reports whether ip is in the list. ip is unmapped (::ffff:a.b.c.d
// becomes a.b.c.d) and stripped of its zone before matching. An invalid
// (zero) address is allowed only by "*".
func (a *AllowList) Allows(ip netip.Addr) bool {
	if a == nil {
		return false
	}
	if a.all {
		return true
	}
	if !ip.IsValid() {
		return false
	}
	ip = ip.Unmap().WithZone("")
	for _, p := range a.prefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// All reports whether the list holds "*": everyone is allowed.
func (a *AllowList) All() bool {
	return a != nil && a.all
}

// String lists the entries as ParseAllowList accepts them, comma-separated
// ("127.0.0.1, ::1, 10.0.0.0/8", "*" first when present; "" when empty).
func (a *AllowList) String() string {
	if a == nil {
		return ""
	}
	var parts []string
	if a.all {
		parts = append(parts, "*")
	}
	for _, p := range a.prefixes {
		if p.IsSingleIP() {
			parts = append(parts, p.Addr().String())
		} else {
			parts = append(parts, p.String())
		}
	}
	return strings.Join(parts, ", ")
}
