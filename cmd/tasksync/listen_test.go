package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/riveredge/tasksync/internal/cli"
)

// TestDevModeRefusesNonLoopbackListen: without a signing key (dev mode)
// anyone who reaches the listener can POST a forged call to
// /api/inngest/<tenant> and run that tenant's task with its secrets, so
// the daemon listens on loopback only unless told otherwise; a signed
// server, or --allow-insecure-listen (with a warning), lets it listen
// anywhere.
func TestDevModeRefusesNonLoopbackListen(t *testing.T) {
	// A database that never answers: a start that passes the check fails
	// there instead, with another error.
	const noDB = "postgres://u@127.0.0.1:1/x?connect_timeout=1"
	dev := map[string]string{"INNGEST_DEV": "http://127.0.0.1:1", "DATABASE_URL": noDB}
	signed := map[string]string{"INNGEST_SIGNING_KEY": "signkey-prod-00", "DATABASE_URL": noDB}
	insecure := map[string]string{"INNGEST_DEV": "http://127.0.0.1:1", "DATABASE_URL": noDB, "TASKSYNC_ALLOW_INSECURE_LISTEN": "true"}
	cases := []struct {
		name, listen string
		env          map[string]string
		args         []string
		refused      bool
		warned       bool
	}{
		{name: "every IPv4 interface", listen: "0.0.0.0:8080", env: dev, refused: true},
		{name: "every interface", listen: ":8080", env: dev, refused: true},
		{name: "every IPv6 interface", listen: "[::]:8080", env: dev, refused: true},
		{name: "a private address", listen: "10.1.2.3:8080", env: dev, refused: true},
		{name: "a public address", listen: "203.0.113.7:8080", env: dev, refused: true},
		{name: "a public IPv6 address", listen: "[2001:db8::1]:8080", env: dev, refused: true},
		{name: "a host name", listen: "tasksync.example.com:8080", env: dev, refused: true},
		{name: "a name ending in localhost", listen: "evil.localhost.example.com:8080", env: dev, refused: true},
		{name: "IPv4 loopback", listen: "127.0.0.1:0", env: dev},
		{name: "another IPv4 loopback", listen: "127.0.0.2:0", env: dev},
		{name: "IPv6 loopback", listen: "[::1]:0", env: dev},
		{name: "localhost", listen: "localhost:0", env: dev},
		{name: "a signed server", listen: "0.0.0.0:0", env: signed},
		{name: "allowed by the flag", listen: "0.0.0.0:0", env: dev, args: []string{"--allow-insecure-listen"}, warned: true},
		{name: "allowed by the environment", listen: "0.0.0.0:0", env: insecure, warned: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr strings.Builder
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			args := append([]string{"run", "--listen", tc.listen, "--dir", t.TempDir()}, tc.args...)
			err := run(ctx, args, func(k string) string { return tc.env[k] }, &stdout, &stderr)
			msg := ""
			if err != nil {
				msg = err.Error()
			}
			refused := strings.Contains(msg, "not a loopback address")
			if refused != tc.refused {
				t.Fatalf("run --listen %s = %v, want refused %v", tc.listen, err, tc.refused)
			}
			if refused {
				for _, want := range []string{"/api/inngest/<tenant>", "INNGEST_SIGNING_KEY", "--allow-insecure-listen", "127.0.0.1"} {
					if !strings.Contains(msg, want) {
						t.Errorf("the refusal does not say %q: %s", want, msg)
					}
				}
				if program().ExitCode(err, &strings.Builder{}) != cli.ExitUsage {
					t.Errorf("exit status of the refusal = %d, want %d", program().ExitCode(err, &strings.Builder{}), cli.ExitUsage)
				}
			}
			if warned := strings.Contains(stderr.String(), "forged"); warned != tc.warned {
				t.Errorf("warning logged = %v, want %v; stderr:\n%s", warned, tc.warned, stderr.String())
			}
		})
	}
}
