package main

import (
	"log/slog"
	"net"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/riveredge/tasksync/internal/cli"
	"github.com/riveredge/tasksync/reconciler"
	"github.com/riveredge/tasksync/reconciler/inngest"
)

// inngestFlags are the flags that place tasksync's apps for Inngest; the
// connection itself is configured by the SDK's environment variables.
type inngestFlags struct {
	listen      string
	serveOrigin string
	appPrefix   string
}

func (o *inngestFlags) flags(f *cli.FlagSet) {
	f.String(&o.listen, "listen", "TASKSYNC_LISTEN", "127.0.0.1:8080", "`address` the daemon serves HTTP on")
	f.String(&o.serveOrigin, "serve-origin", "TASKSYNC_SERVE_ORIGIN", "", "`origin` Inngest calls the apps at (default http:// + --listen)")
	f.String(&o.appPrefix, "app-prefix", "TASKSYNC_APP_PREFIX", reconciler.DefaultAppPrefix, "`prefix` of the Inngest app ids: <prefix>-<tenant>")
}

// registry builds the Inngest registry from the flags and the SDK's
// environment variables, or returns nil when Inngest is not configured.
func (o *inngestFlags) registry(getenv func(string) string, logger *slog.Logger, metrics prometheus.Registerer) (*inngest.Registry, error) {
	dev, signing := getenv("INNGEST_DEV"), getenv("INNGEST_SIGNING_KEY")
	if dev == "" && signing == "" {
		return nil, nil
	}
	if dev == "1" || dev == "true" {
		dev = "http://127.0.0.1:8288"
	}
	origin := o.serveOrigin
	if origin == "" {
		host, port, err := net.SplitHostPort(o.listen)
		if err != nil {
			return nil, cli.UsageError("--listen %q: %v", o.listen, err)
		}
		origin = "http://" + net.JoinHostPort(host, port)
	}
	reg, err := inngest.New(inngest.Options{
		AppPrefix:          o.appPrefix,
		ServeOrigin:        origin,
		DevURL:             dev,
		BaseURL:            getenv("INNGEST_BASE_URL"),
		SigningKey:         signing,
		SigningKeyFallback: getenv("INNGEST_SIGNING_KEY_FALLBACK"),
		EventKey:           getenv("INNGEST_EVENT_KEY"),
		Env:                getenv("INNGEST_ENV"),
		Logger:             logger,
		Registerer:         metrics,
	})
	if err != nil {
		return nil, err
	}
	return reg, nil
}
