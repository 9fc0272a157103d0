package executor_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/riveredge/tasksync/reconciler/executor"
)

// nxdomainServer answers every DNS query on a loopback UDP port with
// "no such name", until the test ends, and returns its address.
func nxdomainServer(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { pc.Close(); <-done })
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return // closed
			}
			q := buf[:n]
			if n < 12 {
				continue
			}
			end := 12 // the question: labels, then type and class
			for end < n && q[end] != 0 {
				end += int(q[end]) + 1
			}
			end += 5
			if end > n {
				continue
			}
			resp := append([]byte{q[0], q[1], 0x81, 0x83, 0, 1, 0, 0, 0, 0, 0, 0}, q[12:end]...)
			if _, err := pc.WriteTo(resp, from); err != nil {
				return
			}
		}
	}()
	return pc.LocalAddr().String()
}

// TestDNSErrorNamesTheServerQueried: with --dns-server set, a failed
// lookup names that server, not the system resolver the error would
// otherwise name (and which was never asked).
func TestDNSErrorNamesTheServerQueried(t *testing.T) {
	server := nxdomainServer(t)
	g := executor.NewGuard(nil)
	g.UseDNSServer(server)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := g.DialContext(ctx, "tcp", "nothing.tasksync-test.example:80")
	if err == nil {
		conn.Close()
		t.Fatal("dial resolved a name the server says does not exist")
	}
	if !strings.Contains(err.Error(), "on "+server) {
		t.Errorf("dial error = %q, want it to name the DNS server queried, %s", err, server)
	}
}
