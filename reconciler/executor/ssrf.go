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
// neighbours or a cloud provider's metadata service. It follows the IANA
// special-purpose address registries: an entry there that is not
// globally reachable is here. The first matching entry names the reason;
// an address inside one of an entry's except networks is not matched by
// it. IPv6 forms that carry an IPv4 address are judged by that address
// too (see embedded).
var refused = []struct {
	prefix netip.Prefix
	why    string
	except []netip.Prefix
}{
	{prefix: netip.MustParsePrefix("0.0.0.0/8"), why: "unspecified or this-network"},
	{prefix: netip.MustParsePrefix("10.0.0.0/8"), why: "private (RFC 1918)"},
	{prefix: netip.MustParsePrefix("100.64.0.0/10"), why: "carrier-grade NAT (RFC 6598)"},
	{prefix: netip.MustParsePrefix("127.0.0.0/8"), why: "loopback"},
	{prefix: netip.MustParsePrefix("169.254.0.0/16"), why: "link-local (and cloud metadata)"},
	{prefix: netip.MustParsePrefix("172.16.0.0/12"), why: "private (RFC 1918)"},
	{prefix: netip.MustParsePrefix("192.0.0.0/24"), why: "IETF protocol assignments"},
	{prefix: netip.MustParsePrefix("192.0.2.0/24"), why: "documentation (TEST-NET-1)"},
	{prefix: netip.MustParsePrefix("192.168.0.0/16"), why: "private (RFC 1918)"},
	{prefix: netip.MustParsePrefix("198.18.0.0/15"), why: "benchmarking"},
	{prefix: netip.MustParsePrefix("198.51.100.0/24"), why: "documentation (TEST-NET-2)"},
	{prefix: netip.MustParsePrefix("203.0.113.0/24"), why: "documentation (TEST-NET-3)"},
	{prefix: netip.MustParsePrefix("224.0.0.0/4"), why: "multicast"},
	{prefix: netip.MustParsePrefix("240.0.0.0/4"), why: "reserved and broadcast"},
	{prefix: netip.MustParsePrefix("::/128"), why: "unspecified"},
	{prefix: netip.MustParsePrefix("::1/128"), why: "loopback"},
	{prefix: netip.MustParsePrefix("::/96"), why: "IPv4-compatible (deprecated, RFC 4291)"},
	{prefix: netip.MustParsePrefix("::/8"), why: "reserved by the IETF", except: []netip.Prefix{
		netip.MustParsePrefix("::ffff:0:0/96"), // IPv4-mapped: judged as its IPv4 address
		netip.MustParsePrefix("64:ff9b::/96"),  // NAT64 well-known prefix: likewise
	}},
	{prefix: netip.MustParsePrefix("64:ff9b:1::/48"), why: "local-use NAT64 (RFC 8215)"},
	{prefix: netip.MustParsePrefix("100::/64"), why: "discard"},
	{prefix: netip.MustParsePrefix("100:0:0:1::/64"), why: "dummy prefix (RFC 9780)"},
	{prefix: netip.MustParsePrefix("2001:2::/48"), why: "benchmarking"},
	{prefix: netip.MustParsePrefix("2001:10::/28"), why: "ORCHID (deprecated)"},
	{prefix: netip.MustParsePrefix("2001:20::/28"), why: "ORCHIDv2 (identifiers, not locators)"},
	{prefix: netip.MustParsePrefix("2001::/23"), why: "IETF protocol assignments", except: []netip.Prefix{
		netip.MustParsePrefix("2001::/32"),       // Teredo: judged by the addresses it carries
		netip.MustParsePrefix("2001:1::1/128"),   // port control protocol anycast
		netip.MustParsePrefix("2001:1::2/128"),   // TURN anycast
		netip.MustParsePrefix("2001:1::3/128"),   // DNS-SD service registration anycast
		netip.MustParsePrefix("2001:3::/32"),     // AMT
		netip.MustParsePrefix("2001:4:112::/48"), // AS112
		netip.MustParsePrefix("2001:30::/28"),    // drone remote ID
	}},
	{prefix: netip.MustParsePrefix("2001:db8::/32"), why: "documentation"},
	{prefix: netip.MustParsePrefix("3fff::/20"), why: "documentation"},
	{prefix: netip.MustParsePrefix("5f00::/16"), why: "segment routing (SRv6) SIDs"},
	{prefix: netip.MustParsePrefix("fc00::/7"), why: "unique local (and cloud metadata)"},
	{prefix: netip.MustParsePrefix("fe80::/10"), why: "link-local"},
	{prefix: netip.MustParsePrefix("fec0::/10"), why: "site-local (deprecated)"},
	{prefix: netip.MustParsePrefix("ff00::/8"), why: "multicast"},
}

// Guard decides which addresses api_call may connect to.
type Guard struct {
	allow    []netip.Prefix
	resolver *net.Resolver // nil: the system's
	// dnsServer is the server resolver asks (UseDNSServer); "" for the
	// system's.
	dnsServer string
}

// UseDNSServer makes the guard's dials resolve names with the DNS server
// at addr (host:port) instead of the system's resolver.
func (g *Guard) UseDNSServer(addr string) {
	g.dnsServer = addr
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
// ErrRefused that says why not. An IPv6 address that carries an IPv4
// address (IPv4-mapped, IPv4-compatible, IPv4-translated, NAT64, 6to4,
// Teredo, ISATAP) is refused when any address it carries is, unless
// --allow-cidr names the IPv6 address itself; IPv4-mapped and NAT64
// addresses, which reach exactly the IPv4 address they carry, are also
// allowed when --allow-cidr names that IPv4 address.
func (g *Guard) Check(addr netip.Addr) error {
	addr = addr.WithZone("")
	if !addr.IsValid() {
		return fmt.Errorf("%w: invalid address", ErrRefused)
	}
	if g.allowed(addr) {
		return nil
	}
	for _, e := range embedded(addr) {
		if e.translated && g.allowed(e.addr) {
			return nil
		}
		// A tunnel (6to4, Teredo, ISATAP, the deprecated IPv4-compatible
		// and -translated forms) reaches a relay or a host of the IPv6
		// network, not exactly the IPv4 address it carries: allowing that
		// address does not allow the tunnel; only naming the IPv6 address
		// does (checked above).
		if why := refusedWhy(e.addr); why != "" {
			return fmt.Errorf("%w: %s is the %s form of %s, which is %s; allow the IPv6 address itself with --allow-cidr if it is meant", ErrRefused, addr, e.form, e.addr, why)
		}
	}
	if why := refusedWhy(addr); why != "" {
		return fmt.Errorf("%w: %s is %s; allow it with --allow-cidr if it is meant", ErrRefused, addr, why)
	}
	return nil
}

// allowed reports whether --allow-cidr names addr.
func (g *Guard) allowed(addr netip.Addr) bool {
	for _, p := range g.allow {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// refusedWhy returns why addr is refused, or "" when it is public.
func refusedWhy(addr netip.Addr) string {
	for _, r := range refused {
		if r.prefix.Contains(addr) && !containedIn(r.except, addr) {
			return r.why
		}
	}
	return ""
}

func containedIn(prefixes []netip.Prefix, addr netip.Addr) bool {
	for _, p := range prefixes {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// carried is an IPv4 address an IPv6 address carries.
type carried struct {
	addr netip.Addr
	form string
	// translated: a connection to the IPv6 address reaches exactly addr
	// (IPv4-mapped, NAT64), so allowing addr allows the IPv6 form.
	translated bool
}

var (
	mapped     = netip.MustParsePrefix("::ffff:0:0/96")
	compatible = netip.MustParsePrefix("::/96")
	translated = netip.MustParsePrefix("::ffff:0:0:0/96")
	nat64      = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour  = netip.MustParsePrefix("2002::/16")
	teredo     = netip.MustParsePrefix("2001::/32")
)

// embedded returns the IPv4 addresses an IPv6 address carries in the
// forms that embed one: IPv4-mapped ::ffff:a.b.c.d, IPv4-compatible
// ::a.b.c.d, IPv4-translated ::ffff:0:a.b.c.d, NAT64 64:ff9b::a.b.c.d,
// 6to4 2002:AABB:CCDD::/48 (bits 16-48), Teredo 2001:0:SSSS:SSSS::CCCC:CCCC
// (the server in bits 32-64, the client inverted in the last 32) and an
// ISATAP interface id (::0:5efe:a.b.c.d or ::200:5efe:a.b.c.d, under any
// prefix, with the u/g bits either way).
func embedded(addr netip.Addr) []carried {
	if addr.Is4() {
		return nil
	}
	b := addr.As16()
	v4 := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{b[i], b[i+1], b[i+2], b[i+3]}) }
	var out []carried
	switch {
	case mapped.Contains(addr):
		return []carried{{addr.Unmap(), "IPv4-mapped", true}}
	case nat64.Contains(addr):
		return []carried{{v4(12), "NAT64", true}}
	case compatible.Contains(addr) && addr.Compare(netip.MustParseAddr("::1")) > 0:
		out = append(out, carried{v4(12), "IPv4-compatible", false})
	case translated.Contains(addr):
		out = append(out, carried{v4(12), "IPv4-translated", false})
	case sixToFour.Contains(addr):
		out = append(out, carried{v4(2), "6to4", false})
	case teredo.Contains(addr):
		client := netip.AddrFrom4([4]byte{^b[12], ^b[13], ^b[14], ^b[15]})
		out = append(out, carried{client, "Teredo client", false}, carried{v4(4), "Teredo server", false})
	}
	if b[8]&^0x03 == 0 && b[9] == 0 && b[10] == 0x5e && b[11] == 0xfe {
		out = append(out, carried{v4(12), "ISATAP", false})
	}
	return out
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
	conn, err := d.DialContext(ctx, network, address)
	var dnsErr *net.DNSError
	if err != nil && g.dnsServer != "" && errors.As(err, &dnsErr) {
		// The resolver names the server of the system's configuration,
		// although its Dial sent the query to this one.
		dnsErr.Server = g.dnsServer
	}
	return conn, err
}
