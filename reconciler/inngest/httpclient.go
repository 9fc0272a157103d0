package inngest

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// Bounds of the registry's connections to the Inngest server: every sync,
// verification and event of every tenant shares them.
const (
	// maxConnsPerHost bounds the connections open to the server at once,
	// in use or idle; a request beyond waits for one.
	maxConnsPerHost = 16
	// maxIdleConnsPerHost are kept open between resyncs for reuse.
	maxIdleConnsPerHost = 8
	// idleConnTimeout closes a connection unused that long.
	idleConnTimeout = 90 * time.Second
	// maxResponseBody bounds a response read from the server: an app's
	// function list with its configuration is the largest.
	maxResponseBody = 16 << 20
)

// newHTTPClient is the registry's default client: one transport with
// bounded connections for everything the registry sends to Inngest.
func newHTTPClient() *http.Client {
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			ForceAttemptHTTP2:     true,
			MaxIdleConns:          maxIdleConnsPerHost,
			MaxIdleConnsPerHost:   maxIdleConnsPerHost,
			MaxConnsPerHost:       maxConnsPerHost,
			IdleConnTimeout:       idleConnTimeout,
			TLSHandshakeTimeout:   10 * time.Second,
			ExpectContinueTimeout: time.Second,
		},
	}
}

// readBodies is a transport that reads every response body (up to
// maxResponseBody) and closes it before the caller sees the response,
// which gets the bytes read instead. A caller that forgets to close a
// body, or closes it without reading it (the SDK does both on some
// paths), then holds no connection: each goes back to the pool at once.
type readBodies struct {
	base http.RoundTripper
}

// RoundTrip sends req and returns its response with the body read.
func (t readBodies) RoundTrip(req *http.Request) (*http.Response, error) {
	res, err := t.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(io.LimitReader(res.Body, maxResponseBody+1))
	if cerr := res.Body.Close(); err == nil {
		err = cerr
	}
	if err == nil && len(body) > maxResponseBody {
		err = errTooLarge
	}
	if err != nil {
		return nil, fmt.Errorf("%s %s: read the response: %w", req.Method, req.URL.Redacted(), err)
	}
	res.Body = io.NopCloser(bytes.NewReader(body))
	res.ContentLength = int64(len(body))
	return res, nil
}

var errTooLarge = fmt.Errorf("the response is larger than %d MiB", maxResponseBody>>20)

// withReadBodies returns a copy of c whose transport reads and closes
// every response body (readBodies).
func withReadBodies(c *http.Client) *http.Client {
	cc := *c
	base := cc.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	if _, ok := base.(readBodies); !ok {
		cc.Transport = readBodies{base: base}
	}
	return &cc
}
