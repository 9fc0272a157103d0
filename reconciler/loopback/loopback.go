// Package loopback starts nothing itself: it helps whoever starts a
// server on 127.0.0.1, a test or `make run`, pick a free port and wait
// until the server answers.
package loopback

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"
)

// FreePort returns a port of 127.0.0.1 that nothing listens on at the
// moment of the call.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free loopback port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// FreeAddr is FreePort as an address, "127.0.0.1:port".
func FreeAddr() (string, error) {
	port, err := FreePort()
	if err != nil {
		return "", err
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), nil
}

// WaitHTTP polls url with GET every 100ms until it answers 200 OK, and
// returns ctx's error if ctx ends first: give ctx the deadline.
func WaitHTTP(ctx context.Context, url string) error {
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return fmt.Errorf("wait for %s: %w", url, err)
		}
		if res, err := http.DefaultClient.Do(req); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s did not answer 200 OK: %w", url, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}
