package executor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"time"
)

// refused lists the networks an api_call may not reach unless an operator
// allows them with --allow-cidr: everything that is not the public
// internet, where a definition could reach tasksync's own host, its
// neighbours or a cloud provider's metadata service.
var refused = []struct {
	prefix netip.Prefix
	why    string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "unspecified or this-network"},
	{netip.MustParsePrefix("10.0.0.0/8"), "private (RFC 1918)"},
	{netip.MustParsePrefix("100.64.0.0/10"), "carrier-grade NAT (RFC 6598)"},
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local (and cloud metadata)"},
	{netip.MustParsePrefix("172.16.0.0/12"), "private (RFC 1918)"},
	{netip.MustParsePrefix("192.0.0.0/24"), "IETF protocol assignments"},
	{netip.MustParsePrefix("192.168.0.0/16"), "private (RFC 1918)"},
	{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved and broadcast"},
	{netip.MustParsePrefix("::/128"), "unspecified"},
	{netip.MustParsePrefix("::1/128"), "loopback"},
	{netip.MustParsePrefix("fc00::/7"), "unique local (and cloud metadata)"},
	{netip.MustParsePrefix("fe80::/10"), "link-local"},
	{netip.MustParsePrefix("ff00::/8"), "multicast"},
	{netip.MustParsePrefix("100::/64"), "discard"},
	{netip.MustParsePrefix("2001:db8::/32"), "documentation"},
}

// Guard decides which addresses api_call may connect to.
type Guard struct {
	allow    []netip.Prefix
	resolver *net.Resolver // nil: the system's
}

// UseDNSServer makes the guard's dials resolve names with the DNS server
// at addr (host:port) instead of the system's resolver.
func (g *Guard) UseDNSServer(addr string) {
	g.resolver = &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}
}

// NewGuard returns a guard that refuses the non-public networks except
// those in allow (--allow-cidr).
func NewGuard(allow []netip.Prefix) *Guard {
	return &Guard{allow: allow}
}

// ParseCIDRs reads a comma-separated list of networks ("10.0.0.0/8,
// 192.168.1.5/32"); a bare address means that one address.
func ParseCIDRs(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range list {
		if s == "" {
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return nil, fmt.Errorf("allow-cidr %q: not a network such as 10.0.0.0/8 or an address", s)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// ErrRefused is the error of a connection the guard refused.
var ErrRefused = errors.New("address refused by the SSRF guard")

// Check returns nil when addr may be reached, or an error wrapping
// ErrRefused that says why not. IPv4-mapped and NAT64 forms of an IPv4
// address are judged as that address.
func (g *Guard) Check(addr netip.Addr) error {
	addr = addr.WithZone("")
	if !addr.IsValid() {
		return fmt.Errorf("%w: invalid address", ErrRefused)
	}
	judged := unwrap4(addr)
	for _, p := range g.allow {
		if p.Contains(addr) || p.Contains(judged) {
			return nil
		}
	}
	for _, r := range refused {
		if r.prefix.Contains(judged) {
			return fmt.Errorf("%w: %s is %s; allow it with --allow-cidr if it is meant", ErrRefused, addr, r.why)
		}
	}
	return nil
}

var nat64 = netip.MustParsePrefix("64:ff9b::/96")

// unwrap4 returns the IPv4 address an IPv6 address carries as IPv4-mapped
// (::ffff:a.b.c.d) or NAT64 (64:ff9b::a.b.c.d), or addr itself.
func unwrap4(addr netip.Addr) netip.Addr {
	if addr.Is4In6() {
		return addr.Unmap()
	}
	if nat64.Contains(addr) {
		b := addr.As16()
		return netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})
	}
	return addr
}

// control runs on every connection after DNS resolution and before the
// connect system call, so a hostname that resolves to a refused address,
// a DNS answer that changes between checks (rebinding) and every redirect
// are all judged by the address actually dialled.
func (g *Guard) control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: cannot parse %q", ErrRefused, address)
	}
	return g.Check(ap.Addr())
}

// DialContext dials like a net.Dialer whose every connection the guard
// checks.
func (g *Guard) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second, Control: g.control, Resolver: g.resolver}
	return d.DialContext(ctx, network, address)
}
