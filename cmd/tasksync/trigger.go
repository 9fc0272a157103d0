package main

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/riveredge/tasksync/internal/cli"
	"github.com/riveredge/tasksync/reconciler"
	"github.com/riveredge/tasksync/reconciler/definitions"
	"github.com/riveredge/tasksync/reconciler/inngest"
	"github.com/riveredge/tasksync/reconciler/store"
)

// exitTimeout is trigger --wait's status when the run had not ended
// within --timeout.
const exitTimeout = 3

// maxTriggerData bounds --data: Inngest refuses larger events.
const maxTriggerData = 256 << 10

// definitionCode is the pattern of metadata.code (the JSON Schema's).
var definitionCode = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,49}$`)

// triggerPoll is how often --wait reads the run's state.
const triggerPoll = 500 * time.Millisecond

type triggerOptions struct {
	dbOptions
	data    string
	hash    string
	wait    bool
	timeout time.Duration
	print   bool
}

func triggerFlags(f *cli.FlagSet) {
	o := &triggerOptions{}
	o.dbOptions.flags(f)
	f.String(&o.data, "data", "", "", "a JSON `object` merged into the event's data, which the run reads as event.data (not tenant_id, code or hash)")
	f.String(&o.hash, "hash", "", "", "run only if the applied version is this `spec_hash` (or its first 8 or more characters), as the status API shows it")
	f.Bool(&o.wait, "wait", "", "follow the run to its end and exit with its outcome")
	f.Duration(&o.timeout, "timeout", "TASKSYNC_TRIGGER_TIMEOUT", 10*time.Minute, "how long --wait follows the run")
	f.Bool(&o.print, "print-event", "", "print the signed event as JSON instead of sending it (to post it with curl); it is valid for an hour")
	f.Opts = o
}

func runTrigger(ctx context.Context, c *cli.Invocation) error {
	o := c.Flags.Opts.(*triggerOptions)
	args := c.Args
	if len(args) > 2 {
		// Flags may follow TENANT CODE too.
		if err := c.Flags.Set.Parse(args[2:]); err != nil {
			return cli.UsageError("trigger: %v (see 'tasksync trigger -h')", err)
		}
		args = append(args[:2:2], c.Flags.Set.Args()...)
	}
	if len(args) != 2 {
		return cli.UsageError("trigger takes TENANT CODE (see 'tasksync trigger -h')")
	}
	tenant, code := args[0], args[1]
	if msg := definitions.TenantCodeProblem(tenant); msg != "" {
		return cli.UsageError("trigger: tenant %q: %s", tenant, msg)
	}
	if !definitionCode.MatchString(code) {
		return cli.UsageError("trigger: %q is not a definition code: codes are lowercase letters, digits, '-' and '_', at most 50", code)
	}
	var data map[string]any
	if o.data != "" {
		if len(o.data) > maxTriggerData {
			return cli.UsageError("trigger: --data is %d bytes; at most %d", len(o.data), maxTriggerData)
		}
		dec := json.NewDecoder(strings.NewReader(o.data))
		dec.UseNumber()
		if err := dec.Decode(&data); err != nil || data == nil || dec.More() {
			return cli.UsageError("trigger: --data must be one JSON object, such as '{\"customer_id\": 42}'")
		}
	}
	if o.hash != "" && (len(o.hash) < 8 || strings.Trim(strings.ToLower(o.hash), "0123456789abcdef") != "") {
		return cli.UsageError("trigger: --hash must be a spec_hash, or at least its first 8 hex characters")
	}
	if o.wait && o.timeout <= 0 {
		return cli.UsageError("trigger: --timeout must be positive")
	}
	conn, ok := inngestConnection(c.Getenv)
	if !ok && !o.print {
		return cli.UsageError("trigger: Inngest is not configured: set INNGEST_DEV (the dev server) or INNGEST_EVENT_KEY and INNGEST_SIGNING_KEY (a signed server)")
	}

	// Check before sending (the function checks again when it runs).
	st, err := o.open(ctx, store.Options{})
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.CheckSchema(ctx); err != nil {
		return err
	}
	def, err := reconciler.ManualTarget(ctx, st, tenant, code, o.hash)
	if err != nil {
		return err
	}
	if def.SyncState != reconciler.SyncSynced {
		fmt.Fprintf(c.Stderr, "tasksync: warning: the Inngest function of %s/%s is %s: Inngest may not start it\n", tenant, code, def.SyncState)
	}
	key, err := st.EventKey(ctx)
	if err != nil {
		return err
	}
	ev, err := inngest.ManualEvent(key, tenant, code, def.Hash, data)
	if err != nil {
		return cli.UsageError("trigger: --data: %v", err)
	}
	if o.print {
		b, err := json.Marshal(ev)
		if err != nil {
			return err
		}
		fmt.Fprintf(c.Stdout, "%s\n", b)
		return nil
	}
	sender, err := inngest.NewSender(conn)
	if err != nil {
		return err
	}
	id, err := sender.Send(ctx, ev)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.Stdout, "trigger: sent %s for %s/%s (%s, revision %d): event %s\n", reconciler.ManualRunEvent, tenant, code, def.Kind, def.Revision, id)
	if !o.wait {
		return nil
	}
	wctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	run, err := sender.FollowRecorded(wctx, st, tenant, code, id, triggerPoll)
	switch {
	case err != nil && ctx.Err() == nil && wctx.Err() != nil:
		if run.RunID == "" {
			return &cli.ExitError{Code: exitTimeout, Err: fmt.Errorf("no run of event %s started within %s: is the function registered (tasksync's status API, sync_state)?", id, o.timeout)}
		}
		return &cli.ExitError{Code: exitTimeout, Err: fmt.Errorf("run %s is still running after %s; it goes on: see %s", run.RunID, o.timeout, reconciler.RunPointers(run.RunID))}
	case err != nil:
		return err
	}
	if run.Refused != nil {
		fmt.Fprintf(c.Stdout, "trigger: run %s failed in Inngest before it ran (%s)\n", reconciler.EscapeText(run.RunID), reconciler.EscapeText(strings.ToLower(run.Refused.Status)))
		reconciler.WriteIndented(c.Stdout, "", run.Refused.Output)
		return &cli.ExitError{Code: cli.ExitFailure}
	}
	run.Final.WriteOutcome(c.Stdout, run.RunID)
	if run.Final.Status != reconciler.RunSucceeded {
		return &cli.ExitError{Code: cli.ExitFailure}
	}
	return nil
}

// inngestConnection reads the connection settings of the SDK's
// environment variables, as the daemon does; ok is false when neither a
// dev server nor a signed server is configured.
func inngestConnection(getenv func(string) string) (opts inngest.Options, ok bool) {
	dev := getenv("INNGEST_DEV")
	if dev == "1" || dev == "true" {
		dev = "http://127.0.0.1:8288"
	}
	opts = inngest.Options{DevURL: dev, BaseURL: getenv("INNGEST_BASE_URL"), SigningKey: getenv("INNGEST_SIGNING_KEY"),
		EventKey: getenv("INNGEST_EVENT_KEY"), Env: getenv("INNGEST_ENV")}
	return opts, dev != "" || opts.EventKey != ""
}
