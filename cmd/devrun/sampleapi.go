package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// sampleAPIHost is the secret the sample tree's api_calls take their
// host from (`http://${secret:SAMPLE_API_HOST}/...`). make run grants it
// to every tenant through the environment with the sample API's address;
// a file of that name in the secrets directory wins, so the samples can
// be pointed at a real service without editing the tree.
const sampleAPIHost = "SAMPLE_API_HOST"

// maxSampleBody caps the request body the sample API reads and echoes.
const maxSampleBody = 1 << 20

// sampleAPI is the loopback server the sample tree calls under make run:
// it answers every request 200 with the request echoed as JSON (method,
// path, query, headers, body) and logs one line per request.
type sampleAPI struct {
	mu  sync.Mutex
	log io.Writer
}

// echo is what the sample API answers.
type echo struct {
	Method  string              `json:"method"`
	Path    string              `json:"path"`
	Query   map[string][]string `json:"query,omitempty"`
	Headers map[string]string   `json:"headers"`
	Body    any                 `json:"body,omitempty"`
}

func (s *sampleAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	data, err := io.ReadAll(io.LimitReader(r.Body, maxSampleBody+1))
	if err != nil || len(data) > maxSampleBody {
		http.Error(w, fmt.Sprintf("the sample API reads bodies of up to %d bytes", maxSampleBody), http.StatusRequestEntityTooLarge)
		return
	}
	e := echo{Method: r.Method, Path: r.URL.Path, Headers: map[string]string{}}
	if q := r.URL.Query(); len(q) > 0 {
		e.Query = q
	}
	for name := range r.Header {
		e.Headers[name] = r.Header.Get(name)
	}
	if len(data) > 0 {
		if json.Valid(data) {
			e.Body = json.RawMessage(data)
		} else {
			e.Body = string(data)
		}
	}
	s.mu.Lock()
	fmt.Fprintf(s.log, "%s %s %s %s\n", time.Now().UTC().Format(time.RFC3339), r.Method, r.URL.RequestURI(), data)
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if err := json.NewEncoder(w).Encode(e); err != nil {
		return // the caller went away; nothing to tell it
	}
}

// serveSampleAPI listens on addr and serves the sample API until ctx
// ends; it returns the address it listens on and a wait that returns
// once the server has stopped.
func serveSampleAPI(ctx context.Context, addr string, log io.Writer) (string, func() error, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("the sample API cannot listen on %s: %w (choose another with -sample-api 127.0.0.1:0)", addr, err)
	}
	srv := &http.Server{Handler: &sampleAPI{log: log}, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() {
		err := srv.Serve(l)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		done <- err
	}()
	stop := context.AfterFunc(ctx, func() { srv.Close() })
	wait := func() error {
		stop()
		srv.Close()
		return <-done
	}
	return l.Addr().String(), wait, nil
}
