package main

import (
	"net"
	"strings"

	"github.com/riveredge/tasksync/internal/cli"
)

// checkListen refuses, in dev mode, a listen address that is not loopback.
// The dev server signs nothing, so the apps cannot tell its calls from
// anyone else's: whoever reaches the listener could POST a forged call to
// /api/inngest/<tenant> and run that tenant's tasks with its secrets. Only
// a literal loopback address or "localhost" is accepted: any other name
// may resolve to anything, and an empty host or 0.0.0.0 / :: is every
// interface.
func checkListen(listen string, dev, allowInsecure bool) error {
	if !dev || allowInsecure {
		return nil
	}
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return cli.UsageError("run: --listen %q: %v", listen, err)
	}
	if isLoopbackHost(host) {
		return nil
	}
	return insecureListenError(listen)
}

// checkListener checks, in dev mode, the address the listener is bound to
// ("localhost" resolves where the system says).
func checkListener(ln net.Listener, dev, allowInsecure bool) error {
	if !dev || allowInsecure {
		return nil
	}
	if a, ok := ln.Addr().(*net.TCPAddr); ok && a.IP.IsLoopback() {
		return nil
	}
	return insecureListenError(ln.Addr().String())
}

func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func insecureListenError(addr string) error {
	return cli.UsageError("run: --listen %s is not a loopback address, and INNGEST_DEV is set: in dev mode no call to the apps is signed, "+
		"so anyone who can reach the listener could POST a forged call to /api/inngest/<tenant> and run that tenant's tasks with its secrets. "+
		"Listen on 127.0.0.1, [::1] or localhost (default 127.0.0.1:8080); or use a signed server (INNGEST_SIGNING_KEY, without INNGEST_DEV); "+
		"or, accepting the risk on a network only you reach, pass --allow-insecure-listen (TASKSYNC_ALLOW_INSECURE_LISTEN=true)", addr)
}

// insecureListenWarning is logged at start when --allow-insecure-listen
// lets a dev-mode daemon listen beyond loopback.
const insecureListenWarning = "dev mode on a non-loopback listener (--allow-insecure-listen): anyone who can reach it can POST forged calls to /api/inngest/<tenant> and run any tenant's tasks with its secrets"
