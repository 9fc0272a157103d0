package executor_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/riveredge/tasksync/reconciler/executor"
)

// TestGuardEmbeddedForms: every IPv6 form that carries an IPv4 address is
// judged as that address, and the special-purpose IPv6 networks that are
// not the public internet are refused, whatever address they carry.
func TestGuardEmbeddedForms(t *testing.T) {
	g := executor.NewGuard(mustCIDRs(t, "10.1.2.0/24"))
	cases := []struct {
		name    string
		addr    string
		allowed bool
	}{
		// IPv4-compatible (::a.b.c.d, deprecated): the whole ::/96 is refused.
		{"compatible loopback", "::7f00:2", false},
		{"compatible loopback, dotted", "::127.0.0.1", false},
		{"compatible metadata", "::a9fe:a9fe", false},
		{"compatible private", "::c0a8:101", false},
		{"compatible public", "::808:808", false},
		// IPv4-translated (::ffff:0:a.b.c.d) and the rest of ::/8.
		{"translated loopback", "::ffff:0:7f00:1", false},
		{"reserved ::/8", "0:1::7f00:1", false},
		// IPv4-mapped and NAT64 well-known prefix: the address they carry.
		{"mapped loopback", "::ffff:7f00:2", false},
		{"mapped public", "::ffff:808:808", true},
		{"nat64 loopback", "64:ff9b::7f00:1", false},
		{"nat64 private", "64:ff9b::a00:1", false},
		{"nat64 metadata", "64:ff9b::a9fe:a9fe", false},
		{"nat64 allowed", "64:ff9b::a01:203", true},
		{"nat64 public", "64:ff9b::808:808", true},
		// NAT64 local-use prefix (RFC 8215): not global, refused whole.
		{"local nat64 /96 loopback", "64:ff9b:1::7f00:1", false},
		{"local nat64 /48 loopback", "64:ff9b:1:7f00:1::", false},
		{"local nat64 public", "64:ff9b:1::808:808", false},
		// 6to4: the IPv4 address in bits 16-48.
		{"6to4 loopback", "2002:7f00:1::1", false},
		{"6to4 private", "2002:c0a8:101::1", false},
		{"6to4 metadata", "2002:a9fe:a9fe::", false},
		{"6to4 cgnat", "2002:6440:1::1", false},
		{"6to4 public", "2002:808:808::1", true},
		// Teredo: server in bits 32-64, client (inverted) in the last 32.
		{"teredo client loopback", "2001:0:808:808:0:0:80ff:fffe", false}, // client 127.0.0.1
		{"teredo client metadata", "2001:0:808:808::5601:5601", false},    // client 169.254.169.254
		{"teredo server private", "2001:0:a00:1::f7f7:f7f7", false},       // server 10.0.0.1
		{"teredo public", "2001:0:4136:e378:8000:63bf:f7f7:f7f7", true},   // server 65.54.227.120, client 8.8.8.8
		// ISATAP interface ids, under any prefix.
		{"isatap loopback", "2606:4700::5efe:7f00:1", false},
		{"isatap metadata", "2606:4700::200:5efe:a9fe:a9fe", false},
		{"isatap link-local private", "fe80::5efe:a00:1", false},
		{"isatap public", "2606:4700::200:5efe:808:808", true},
		// Special-purpose networks that are not public (IANA registry).
		{"discard", "100::1", false},
		{"dummy prefix", "100:0:0:1::1", false},
		{"ietf protocol assignments", "2001:5::1", false},
		{"benchmarking", "2001:2::1", false},
		{"orchid", "2001:10::1", false},
		{"orchid v2", "2001:20::1", false},
		{"documentation 2001:db8", "2001:db8::1", false},
		{"documentation 3fff", "3fff:1::1", false},
		{"srv6 sids", "5f00::1", false},
		{"site-local", "fec0::1", false},
		{"documentation v4 test-net-1", "192.0.2.1", false},
		{"documentation v4 test-net-2", "198.51.100.1", false},
		{"documentation v4 test-net-3", "203.0.113.1", false},
		// Globally reachable assignments inside 2001::/23 stay reachable.
		{"pcp anycast", "2001:1::1", true},
		{"amt", "2001:3::1", true},
		{"as112", "2001:4:112::1", true},
		{"public v6", "2606:4700:4700::1111", true},
		{"public v6 2", "2a00:1450:4001:80b::200e", true},
		{"public v4", "1.1.1.1", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := g.Check(netip.MustParseAddr(tc.addr))
			if got := err == nil; got != tc.allowed {
				t.Errorf("Check(%s) = %v, want allowed=%v", tc.addr, err, tc.allowed)
			}
			if err != nil && !errors.Is(err, executor.ErrRefused) {
				t.Errorf("Check(%s) = %v, want ErrRefused", tc.addr, err)
			}
		})
	}
}

// TestGuardNamesTheCarriedAddress: a refusal of an embedding form says
// which IPv4 address it carries, so that an operator sees the target.
func TestGuardNamesTheCarriedAddress(t *testing.T) {
	g := executor.NewGuard(nil)
	for addr, want := range map[string]string{
		"::7f00:2":                  "127.0.0.2",
		"2002:a9fe:a9fe::":          "169.254.169.254",
		"2001:0:808:808::80ff:fffe": "127.0.0.1",
		"2606:4700::5efe:c0a8:101":  "192.168.1.1",
		"64:ff9b::a9fe:a9fe":        "169.254.169.254",
		"::ffff:0:7f00:1":           "127.0.0.1",
	} {
		err := g.Check(netip.MustParseAddr(addr))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Check(%s) = %v, want a refusal naming %s", addr, err, want)
		}
	}
}

// TestGuardRefusesIPv4CompatibleDial: a connection to [::7f00:2] (the
// IPv4-compatible form of 127.0.0.2) is refused by the guard before the
// connect system call, whatever the host's routing would have done.
func TestGuardRefusesIPv4CompatibleDial(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	g := executor.NewGuard(nil)
	for _, host := range []string{"::7f00:2", "::127.0.0.2", "2002:7f00:2::1", "64:ff9b::7f00:2"} {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		conn, err := g.DialContext(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
		cancel()
		if err == nil {
			conn.Close()
			t.Errorf("dial [%s]:%d connected", host, port)
			continue
		}
		if !errors.Is(err, executor.ErrRefused) {
			t.Errorf("dial [%s]:%d = %v, want the guard's refusal before connecting", host, port, err)
		}
	}
}
