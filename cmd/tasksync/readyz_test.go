package main

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/riveredge/tasksync/reconciler/waittest"
)

// TestReadyzShowsNoAddress: when the database goes away, /readyz says 503
// with a fixed phrase; the database's host, port, user and password are in
// the log only, never in the answer anyone can read.
func TestReadyzShowsNoAddress(t *testing.T) {
	bin := buildBinary(t)
	dbURL := pg.NewDatabase(t)
	cfg, err := pgx.ParseConfig(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	// A proxy in front of the database that the test can cut.
	proxy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	target := net.JoinHostPort(cfg.Host, fmt.Sprint(cfg.Port))
	cut := make(chan struct{})
	go func() {
		for {
			c, err := proxy.Accept()
			if err != nil {
				return
			}
			go pipe(c, target, cut)
		}
	}()
	proxied := strings.Replace(dbURL, target, proxy.Addr().String(), 1)
	if proxied == dbURL {
		t.Fatalf("the database URL %s does not name %s", dbURL, target)
	}
	dir := copyTree(t)
	prefix := fmt.Sprintf("r%d", time.Now().UnixNano()%1e6)
	base, _, logs, _ := startDaemon(t, bin, []string{"DATABASE_URL=" + proxied, "TASKSYNC_DIR=" + dir, "INNGEST_DEV=" + dev.URL,
		"TASKSYNC_APP_PREFIX=" + prefix}, "1m")
	waittest.For(t, "the daemon to be ready", 30*time.Second, func() bool { code, _ := get(base + "/readyz"); return code == 200 })

	proxy.Close()
	close(cut)
	// Several answers: the first may come from a pooled connection that
	// broke, the next from a dial that failed.
	var bodies []string
	waittest.For(t, "/readyz to say 503 three times in a row", 30*time.Second, func() bool {
		code, body := get(base + "/readyz")
		if code != 503 {
			bodies = nil
			return false
		}
		bodies = append(bodies, body)
		return len(bodies) >= 3
	})
	_, port, _ := net.SplitHostPort(proxy.Addr().String())
	for _, body := range bodies {
		for _, secret := range []string{"127.0.0.1", port, cfg.User, cfg.Database, "dial", "tcp"} {
			if secret != "" && strings.Contains(body, secret) {
				t.Errorf("/readyz = %s, shows %q", body, secret)
			}
		}
		if !strings.Contains(body, `"reason":"database unavailable"`) {
			t.Errorf("/readyz = %s, want the fixed reason", body)
		}
	}
	waittest.For(t, "the details in the log", 10*time.Second, func() bool {
		return strings.Contains(logs.String(), "readiness") && strings.Contains(logs.String(), port)
	})
}

// pipe copies between c and a new connection to target until either ends
// or cut closes.
func pipe(c net.Conn, target string, cut <-chan struct{}) {
	defer c.Close()
	up, err := net.Dial("tcp", target)
	if err != nil {
		return
	}
	defer up.Close()
	done := make(chan struct{}, 2)
	go func() { copyConn(up, c); done <- struct{}{} }()
	go func() { copyConn(c, up); done <- struct{}{} }()
	select {
	case <-done:
	case <-cut:
	}
}

func copyConn(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
