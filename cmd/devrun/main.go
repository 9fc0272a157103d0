// Command devrun is what `make run` starts: a throwaway PostgreSQL (data
// under .run/), the Inngest dev server and `tasksync run` on tasks.d/, all
// on loopback, with the URLs printed; Ctrl-C stops everything. Unless
// TASKSYNC_SECRETS_DIR is set, the secrets the tree names are placeholders
// written to .run/secrets/<tenant>/NAME.
package main

import (
	"context"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/riveredge/tasksync/reconciler/definitions"
	"github.com/riveredge/tasksync/reconciler/loopback"
	"github.com/riveredge/tasksync/reconciler/store/pgserver"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "devrun:", err)
		os.Exit(1)
	}
}

func run() error {
	dataDir := flag.String("data", ".run", "directory for the throwaway database and logs")
	pgPort := flag.Int("pg-port", 55432, "PostgreSQL port")
	inngestPort := flag.Int("inngest-port", 8288, "Inngest dev server port")
	listen := flag.String("listen", "127.0.0.1:8080", "tasksync's listen address")
	tree := flag.String("dir", "tasks.d", "the definitions tree")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	abs, err := filepath.Abs(*dataDir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return err
	}

	stopPG, err := startPostgres(abs, *pgPort)
	if err != nil {
		return err
	}
	defer stopPG()

	inngest := exec.Command("bin/inngest", "dev", "--no-discovery", "--no-poll", "--host", "127.0.0.1",
		"--port", strconv.Itoa(*inngestPort), "--connect-gateway-port", strconv.Itoa(*inngestPort+1))
	ilog, err := os.Create(filepath.Join(abs, "inngest.log"))
	if err != nil {
		return err
	}
	defer ilog.Close()
	inngest.Stdout, inngest.Stderr = ilog, ilog
	inngest.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := inngest.Start(); err != nil {
		return fmt.Errorf("start the Inngest dev server (make inngest builds it): %w", err)
	}
	defer func() {
		if err := syscall.Kill(-inngest.Process.Pid, syscall.SIGTERM); err != nil {
			fmt.Fprintln(os.Stderr, "devrun: stop the Inngest dev server:", err)
		}
		if err := inngest.Wait(); err != nil {
			fmt.Fprintln(os.Stderr, "devrun: the Inngest dev server stopped:", err)
		}
	}()
	inngestURL := fmt.Sprintf("http://127.0.0.1:%d", *inngestPort)
	waitCtx, cancelWait := context.WithTimeout(ctx, 60*time.Second)
	defer cancelWait()
	if err := loopback.WaitHTTP(waitCtx, inngestURL+"/dev"); err != nil {
		return fmt.Errorf("the Inngest dev server did not start (see %s): %w", ilog.Name(), err)
	}

	dbURL := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", *pgPort)
	fmt.Printf(`
tasksync is starting on %s
  Inngest UI      %s
  status, health  http://%s/readyz
  metrics         http://%s/metrics
  Postgres        %s
Send an event:  curl -X POST %s/e/dev -d '{"name":"customer/created","data":{"tenant_id":"globex","email":"a@example.com","plan":"pro"}}'
Ctrl-C stops everything; data and logs stay in %s.

`, *tree, inngestURL, *listen, *listen, dbURL, inngestURL, *dataDir)
	daemon := exec.CommandContext(ctx, "bin/tasksync", "run")
	daemon.Env = append(os.Environ(), "DATABASE_URL="+dbURL, "TASKSYNC_DIR="+*tree, "TASKSYNC_LISTEN="+*listen, "INNGEST_DEV="+inngestURL)
	if os.Getenv("TASKSYNC_SECRETS_DIR") == "" {
		secrets := filepath.Join(abs, "secrets")
		if err := placeholderSecrets(*tree, secrets); err != nil {
			return err
		}
		daemon.Env = append(daemon.Env, "TASKSYNC_SECRETS_DIR="+secrets)
	}
	if os.Getenv("TASKSYNC_DNS_SERVER") == "" {
		// The sample tree's hosts are examples: resolve nothing unless asked.
		daemon.Env = append(daemon.Env, "TASKSYNC_DNS_SERVER=127.0.0.1:1")
	}
	daemon.Stdout, daemon.Stderr = os.Stdout, os.Stderr
	daemon.Cancel = func() error { return daemon.Process.Signal(syscall.SIGTERM) }
	daemon.WaitDelay = 20 * time.Second
	err = daemon.Run()
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// placeholderSecrets writes, for each secret a tenant of tree names and
// secrets does not hold yet, a placeholder value in secrets/<tenant>/NAME:
// the layout tasksync reads, with each secret granted to its own tenant.
func placeholderSecrets(tree, secrets string) error {
	tenants, err := os.ReadDir(tree)
	if err != nil {
		return err
	}
	for _, t := range tenants {
		if !t.IsDir() || strings.HasPrefix(t.Name(), ".") || strings.HasPrefix(t.Name(), "_") {
			continue
		}
		err := filepath.WalkDir(filepath.Join(tree, t.Name()), func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !(strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml")) {
				return err
			}
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			for _, name := range definitions.SecretRefs(string(data)) {
				file := filepath.Join(secrets, t.Name(), name)
				if _, err := os.Stat(file); err == nil {
					continue
				}
				if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
					return err
				}
				if err := os.WriteFile(file, []byte("dev-placeholder-"+strings.ToLower(name)+"\n"), 0o600); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("placeholder secrets: %w", err)
		}
	}
	return nil
}

// startPostgres initialises (once) and starts a cluster in dir/pg, run as
// the postgres user when we are root, and returns its stop.
func startPostgres(dir string, port int) (func(), error) {
	pg, err := pgserver.NewRunner(dir)
	if err != nil {
		return nil, err
	}
	data := filepath.Join(dir, "pg")
	if _, err := os.Stat(filepath.Join(data, "PG_VERSION")); err != nil {
		if err := pg.Run("initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-instructions"); err != nil {
			return nil, err
		}
	}
	opts := fmt.Sprintf("-c listen_addresses=127.0.0.1 -p %d -k %s", port, dir)
	if err := pg.Run("pg_ctl", "-D", data, "-o", opts, "-l", filepath.Join(dir, "postgres.log"), "-w", "start"); err != nil {
		return nil, err
	}
	return func() {
		if err := pg.Run("pg_ctl", "-D", data, "-m", "fast", "-w", "stop"); err != nil {
			fmt.Fprintln(os.Stderr, "devrun:", err)
		}
	}, nil
}
