// Package inngesttest runs a real Inngest dev server for tests, on free
// loopback ports, from bin/inngest (make inngest) or an inngest on PATH.
package inngesttest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/riveredge/tasksync/reconciler/loopback"
)

// Server is a running dev server, or a self-hosted one (StartSigned).
type Server struct {
	// URL is the server's base URL: event API, register endpoint and REST
	// API on one port.
	URL string
	// SigningKey and EventKey are set for a self-hosted server.
	SigningKey, EventKey string

	bin   string
	dir   string // the self-hosted server's SQLite directory
	ports [4]int // api, connect gateway, gateway gRPC, executor gRPC
	mu    sync.Mutex
	cmd   *exec.Cmd
	log   *bytes.Buffer
	exit  error // how the last killed process ended
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
		if s.ports[i], err = loopback.FreePort(); err != nil {
			return nil, err
		}
	}
	s.URL = fmt.Sprintf("http://127.0.0.1:%d", s.ports[0])
	if err := s.start(); err != nil {
		return nil, err
	}
	return s, nil
}

// StartSigned starts the self-hosted server (`inngest start`), which checks
// signatures: the configuration of a production deployment.
func StartSigned() (*Server, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "tasksync-inngest-")
	if err != nil {
		return nil, err
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	s := &Server{bin: bin, dir: dir, SigningKey: "signkey-test-" + hex.EncodeToString(key), EventKey: "tasksync-test-event-key"}
	for i := range s.ports {
		if s.ports[i], err = loopback.FreePort(); err != nil {
			return nil, err
		}
	}
	s.URL = fmt.Sprintf("http://127.0.0.1:%d", s.ports[0])
	if err := s.start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return s, nil
}

func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.log = &bytes.Buffer{}
	args := []string{"dev", "--no-discovery", "--no-poll"}
	health := "/dev"
	if s.dir != "" {
		args = []string{"start", "--signing-key", strings.TrimPrefix(s.SigningKey, "signkey-test-"), "--event-key", s.EventKey, "--sqlite-dir", s.dir}
		health = "/health"
	}
	args = append(args, "--host", "127.0.0.1",
		"--port", strconv.Itoa(s.ports[0]),
		"--connect-gateway-port", strconv.Itoa(s.ports[1]),
		"--connect-gateway-grpc-port", strconv.Itoa(s.ports[2]),
		"--connect-executor-grpc-port", strconv.Itoa(s.ports[3]),
		"--tick", "50")
	// Started again on the same ports (Up, Restart), the server finds
	// them taken now and then: another socket got one while it was down.
	// Wait, a bounded time, until each can be bound.
	if err := waitPortsFree(s.ports[:], 60*time.Second); err != nil {
		return err
	}
	cmd := exec.Command(s.bin, args...)
	cmd.Stdout, cmd.Stderr = s.log, s.log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Env = append(os.Environ(), "DO_NOT_TRACK=1")
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", s.bin, err)
	}
	s.cmd = cmd
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := loopback.WaitHTTP(ctx, s.URL+health); err != nil {
		if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); err == nil {
			s.exit = cmd.Wait()
		}
		return fmt.Errorf("the Inngest dev server did not answer on %s within 60s:\n%s", s.URL, s.log.String())
	}
	return nil
}

// Stop stops the server and removes its files; everything it knew is gone.
func (s *Server) Stop() {
	s.kill()
	if s.dir != "" {
		os.RemoveAll(s.dir)
	}
}

func (s *Server) kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	if err := syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL); err == nil {
		s.exit = s.cmd.Wait() // killed on purpose: kept for debugging only
	}
	s.cmd = nil
}

// Restart stops the server and starts it again on the same ports. A dev
// server comes back empty, as when a dev server or a non-persistent
// self-hosted one restarts and forgets every app.
func (s *Server) Restart() error {
	s.kill()
	return s.start()
}

// Down stops the server, keeping its ports for Up: an engine outage.
func (s *Server) Down() { s.kill() }

// Up starts a server stopped by Down again on the same ports. A dev
// server comes back empty, as after Restart.
func (s *Server) Up() error { return s.start() }

// Log returns what the server has printed.
func (s *Server) Log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.log.String()
}

// Function is the server's view of one registered function, as its REST
// API lists it (GET /v1/apps/<app>/functions).
type Function struct {
	ID     string `json:"id"`
	Config struct {
		Triggers []Trigger `json:"triggers"`
	} `json:"config"`
}

// Trigger is one trigger of a Function: an event with its expression, or
// a cron.
type Trigger struct {
	Event      string `json:"event"`
	Expression string `json:"expression"`
	Cron       string `json:"cron"`
}

// Crons are the cron expressions of f's cron triggers, in order (its
// event triggers, such as the catch-up event every scheduled function
// takes, are left out).
func (f Function) Crons() []string {
	var crons []string
	for _, tr := range f.Config.Triggers {
		if tr.Cron != "" {
			crons = append(crons, tr.Cron)
		}
	}
	return crons
}

// Functions returns the functions the server holds for app, by id (none
// for an app it does not know), and fails the test when it cannot tell.
func (s *Server) Functions(t testing.TB, app string) map[string]Function {
	t.Helper()
	res, err := http.Get(s.URL + "/v1/apps/" + app + "/functions")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	out := map[string]Function{}
	if res.StatusCode == http.StatusNotFound {
		return out
	}
	var fns []Function
	if err := json.NewDecoder(res.Body).Decode(&fns); err != nil {
		t.Fatalf("functions of %s: %v", app, err)
	}
	for _, f := range fns {
		out[f.ID] = f
	}
	return out
}

// waitPortsFree waits, at most limit, until every port can be bound on
// 127.0.0.1.
func waitPortsFree(ports []int, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for _, p := range ports {
		for {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
			if err == nil {
				l.Close()
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("port %d still taken after %s: %w", p, limit, err)
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
	return nil
}
