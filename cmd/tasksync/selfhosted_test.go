package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/riveredge/tasksync/reconciler/inngest/inngesttest"
	"github.com/riveredge/tasksync/reconciler/loopback"
	"github.com/riveredge/tasksync/reconciler/waittest"
)

// manifestContainer is what the test reads of a container of the
// deployment example: its command line and environment.
type manifestContainer struct {
	Name    string   `yaml:"name"`
	Command []string `yaml:"command"`
	Args    []string `yaml:"args"`
	Env     []struct {
		Name      string `yaml:"name"`
		Value     string `yaml:"value"`
		ValueFrom *struct {
			SecretKeyRef *struct {
				Name string `yaml:"name"`
				Key  string `yaml:"key"`
			} `yaml:"secretKeyRef"`
		} `yaml:"valueFrom"`
	} `yaml:"env"`
}

// manifestDeployment reads the Deployment name of a file of
// examples/deploy/self-hosted-inngest: its replicas and containers.
func manifestDeployment(t *testing.T, file, name string) (replicas int, containers map[string]manifestContainer) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("../../examples/deploy/self-hosted-inngest", file))
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range regexp.MustCompile(`(?m)^---$`).Split(string(b), -1) {
		var d struct {
			Kind     string `yaml:"kind"`
			Metadata struct {
				Name string `yaml:"name"`
			} `yaml:"metadata"`
			Spec struct {
				Replicas int `yaml:"replicas"`
				Template struct {
					Spec struct {
						Containers []manifestContainer `yaml:"containers"`
					} `yaml:"spec"`
				} `yaml:"template"`
			} `yaml:"spec"`
		}
		if err := yaml.Unmarshal([]byte(doc), &d); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if d.Kind == "Deployment" && d.Metadata.Name == name {
			containers = map[string]manifestContainer{}
			for _, c := range d.Spec.Template.Spec.Containers {
				containers[c.Name] = c
			}
			return d.Spec.Replicas, containers
		}
	}
	t.Fatalf("%s: no Deployment %s", file, name)
	return 0, nil
}

// TestSelfHostedInngestExample runs the self-hosted example as its
// manifests say: inngest start with the flags and keys of inngest.yaml,
// on a real PostgreSQL database and a real Redis, and as many tasksync
// replicas as tasksync.yaml runs, each with exactly the environment the
// manifest gives it (the Secret's keys filled in; addresses moved to
// loopback), behind one address as the Service puts them. Every tenant's
// app is synced with the signed server: the environment each needs is
// right.
func TestSelfHostedInngestExample(t *testing.T) {
	inngestBin, err := inngesttest.Binary()
	if err != nil {
		t.Fatal(err)
	}
	redisBin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server is not installed (.ci/run installs the Debian package redis-server): %v", err)
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	// The Secret "inngest" of secrets.yaml, filled in.
	redisPort, err := loopback.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	secret := map[string]string{
		"signing-key":           hex.EncodeToString(key),
		"event-key":             "selfhosted-test-event-key",
		"postgres-uri":          pg.NewDatabase(t),
		"redis-uri":             fmt.Sprintf("redis://127.0.0.1:%d", redisPort),
		"tasksync-database-url": pg.NewDatabase(t),
	}
	envOf := func(c manifestContainer, literal func(name, value string) string) []string {
		var env []string
		for _, e := range c.Env {
			v := e.Value
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				ref := e.ValueFrom.SecretKeyRef
				if ref.Name != "inngest" {
					t.Fatalf("%s: $%s from Secret %s, not the server's", c.Name, e.Name, ref.Name)
				}
				var ok bool
				if v, ok = secret[ref.Key]; !ok {
					t.Fatalf("%s: $%s from key %s, which the test does not fill in", c.Name, e.Name, ref.Key)
				}
			} else {
				v = literal(e.Name, v)
			}
			env = append(env, e.Name+"="+v)
		}
		return env
	}

	redis := exec.Command(redisBin, "--port", strconv.Itoa(redisPort), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no")
	redis.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := redis.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { redis.Process.Kill(); redis.Wait() })

	// inngest start as inngest.yaml runs it, on loopback ports.
	_, ic := manifestDeployment(t, "inngest.yaml", "inngest")
	c := ic["inngest"]
	ports := make([]int, 4)
	for i := range ports {
		if ports[i], err = loopback.FreePort(); err != nil {
			t.Fatal(err)
		}
	}
	env := envOf(c, func(_, v string) string { return v })
	expand := func(s string) string {
		return regexp.MustCompile(`\$\(([A-Z_]+)\)`).ReplaceAllStringFunc(s, func(m string) string {
			name := m[2 : len(m)-1]
			for _, kv := range env {
				if k, v, _ := strings.Cut(kv, "="); k == name {
					return v
				}
			}
			t.Fatalf("inngest.yaml: %s is not in the container's environment", m)
			return ""
		})
	}
	var args []string
	for _, a := range c.Command[1:] {
		switch name, _, _ := strings.Cut(a, "="); name {
		case "--host":
			a = "--host=127.0.0.1"
		case "--port":
			a = "--port=" + strconv.Itoa(ports[0])
		case "--connect-gateway-port":
			a = "--connect-gateway-port=" + strconv.Itoa(ports[1])
		}
		args = append(args, expand(a))
	}
	args = append(args, "--connect-gateway-grpc-port="+strconv.Itoa(ports[2]), "--connect-executor-grpc-port="+strconv.Itoa(ports[3]))
	inngestLog := &waittest.Buffer{}
	srv := exec.Command(inngestBin, args...)
	srv.Env = append(os.Environ(), "DO_NOT_TRACK=1")
	srv.Stdout, srv.Stderr = inngestLog, inngestLog
	srv.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		syscall.Kill(-srv.Process.Pid, syscall.SIGKILL)
		srv.Wait()
		if t.Failed() {
			t.Logf("inngest start:\n%s", inngestLog.String())
		}
	})
	inngestURL := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if err := loopback.WaitHTTP(ctx, inngestURL+"/health"); err != nil {
		t.Fatalf("inngest start did not answer: %v", err)
	}

	// The Service in front of the replicas: any replica takes a call.
	var backends []*url.URL
	var next atomic.Uint64
	service := httptest.NewServer(&httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(backends[next.Add(1)%uint64(len(backends))])
		r.Out.Host = r.In.Host
	}})
	defer service.Close()

	replicas, tc := manifestDeployment(t, "tasksync.yaml", "tasksync")
	if replicas < 2 {
		t.Fatalf("tasksync.yaml runs %d replicas", replicas)
	}
	tree, secrets := copyTree(t), sampleSecrets(t, "s3cr3t")
	tokens := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(tokens, []byte("test-token *\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bin := buildBinary(t)
	var addrs []string
	for range replicas {
		addr, err := loopback.FreeAddr()
		if err != nil {
			t.Fatal(err)
		}
		u, _ := url.Parse("http://" + addr)
		backends = append(backends, u)
		addrs = append(addrs, addr)
	}
	for _, addr := range addrs {
		env := envOf(tc["tasksync"], func(name, v string) string {
			switch name {
			case "TASKSYNC_DIR":
				return tree
			case "TASKSYNC_LISTEN":
				return addr
			case "TASKSYNC_SERVE_ORIGIN":
				return service.URL
			case "TASKSYNC_SECRETS_DIR":
				return secrets
			case "TASKSYNC_STATUS_TOKENS_FILE":
				return tokens
			case "INNGEST_BASE_URL":
				return inngestURL
			}
			return v
		})
		args := append(tc["tasksync"].Command, tc["tasksync"].Args...)
		cmd := exec.Command(bin, append(args, "--resync-interval", "2s")...)
		cmd.Env = append([]string{"PATH=/usr/bin:/bin", noDNS}, env...)
		startLogged(t, cmd, addr, true)
	}
	for _, addr := range addrs {
		if err := loopback.WaitHTTP(ctx, "http://"+addr+"/readyz"); err != nil {
			t.Fatalf("replica %s never ready: %v", addr, err)
		}
	}
	// Every tenant synced with the signed server.
	var last string
	if !waittest.Within(60*time.Second, func() bool {
		req, _ := http.NewRequest("GET", "http://"+addrs[0]+"/v1/tenants", nil)
		req.Header.Set("Authorization", "Bearer test-token")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		defer res.Body.Close()
		var body struct {
			Tenants []struct {
				Tenant    string `json:"tenant"`
				SyncState string `json:"sync_state"`
				SyncError string `json:"sync_error"`
			} `json:"tenants"`
		}
		if json.NewDecoder(res.Body).Decode(&body) != nil || len(body.Tenants) < 2 {
			return false
		}
		b, _ := json.Marshal(body.Tenants)
		last = string(b)
		for _, tn := range body.Tenants {
			if tn.SyncState != "synced" {
				return false
			}
		}
		return true
	}) {
		t.Fatalf("the tenants did not all sync with the self-hosted server within 60s; last: %s", last)
	}
}
