// Package inngesttest runs a real Inngest dev server for tests, on free
// loopback ports, from bin/inngest (make inngest) or an inngest on PATH.
package inngesttest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// Server is a running dev server.
type Server struct {
	// URL is the server's base URL: event API, register endpoint and REST
	// API on one port.
	URL string

	bin   string
	ports [4]int // api, connect gateway, gateway gRPC, executor gRPC
	mu    sync.Mutex
	cmd   *exec.Cmd
	log   *bytes.Buffer
}

// Binary finds the dev server: $TASKSYNC_INNGEST_BIN, bin/inngest at the
// module root, or inngest on PATH.
func Binary() (string, error) {
	if b := os.Getenv("TASKSYNC_INNGEST_BIN"); b != "" {
		return b, nil
	}
	if dir, err := os.Getwd(); err == nil {
		for ; dir != filepath.Dir(dir); dir = filepath.Dir(dir) {
			if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
				if b := filepath.Join(dir, "bin", "inngest"); fileExists(b) {
					return b, nil
				}
				break
			}
		}
	}
	if b, err := exec.LookPath("inngest"); err == nil {
		return b, nil
	}
	return "", errors.New("no Inngest dev server: run make inngest (builds bin/inngest), put inngest on PATH, or set TASKSYNC_INNGEST_BIN")
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// Start starts a dev server and waits until it answers.
func Start() (*Server, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	s := &Server{bin: bin}
	for i := range s.ports {
		if s.ports[i], err = freePort(); err != nil {
			return nil, err
		}
	}
	s.URL = fmt.Sprintf("http://127.0.0.1:%d", s.ports[0])
	if err := s.start(); err != nil {
		return nil, err
	}
	return s, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.log = &bytes.Buffer{}
	cmd := exec.Command(s.bin, "dev", "--no-discovery", "--no-poll", "--host", "127.0.0.1",
		"--port", strconv.Itoa(s.ports[0]),
		"--connect-gateway-port", strconv.Itoa(s.ports[1]),
		"--connect-gateway-grpc-port", strconv.Itoa(s.ports[2]),
		"--connect-executor-grpc-port", strconv.Itoa(s.ports[3]),
		"--tick", "50")
	cmd.Stdout, cmd.Stderr = s.log, s.log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Env = append(os.Environ(), "DO_NOT_TRACK=1")
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", s.bin, err)
	}
	s.cmd = cmd
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/dev", nil)
		if res, err := http.DefaultClient.Do(req); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			_ = cmd.Wait()
			return fmt.Errorf("the Inngest dev server did not answer on %s within 60s:\n%s", s.URL, s.log.String())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Stop stops the server; everything it knew is gone.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	_ = s.cmd.Wait()
	s.cmd = nil
}

// Restart stops the server and starts a fresh one on the same ports, as
// when a dev server or a non-persistent self-hosted one restarts and
// forgets every app.
func (s *Server) Restart() error {
	s.Stop()
	return s.start()
}

// Log returns what the server has printed.
func (s *Server) Log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.log.String()
}
