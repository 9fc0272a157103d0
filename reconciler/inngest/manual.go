package inngest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/inngest/inngestgo"

	"github.com/riveredge/tasksync/reconciler"
)

// Run now: every function also listens for reconciler.ManualRunEvent,
// guarded by its tenant and code, so that one event starts exactly one
// function; `tasksync trigger` sends it and may follow the run it starts.

// ManualGuard is the condition of the ManualRunEvent trigger of tenant's
// function for code.
func ManualGuard(tenant, code string) string {
	return fmt.Sprintf("%s && event.data.code == %s", TenantGuard(tenant), celString(code))
}

// manualTrigger is the ManualRunEvent trigger every function carries
// beside its own.
func manualTrigger(tenant, code string) inngestgo.Trigger {
	expr := ManualGuard(tenant, code)
	return inngestgo.EventTrigger(reconciler.ManualRunEvent, &expr)
}

// ReservedManualKeys are the keys of a manual run's event data that
// tasksync sets; the caller's data may not hold them.
var ReservedManualKeys = []string{"tenant_id", "code", "hash", reconciler.EventNonceKey, reconciler.EventMACKey}

// ManualEvent is the event that starts one run of tenant's definition
// code at version hash now, with the caller's data merged into the
// event's data (which the run's templates read as event.data), signed
// with key (reconciler.EventKey: the store's). A nil key leaves it
// unsigned, and the run refuses it.
func ManualEvent(key *reconciler.EventKey, tenant, code, hash string, data map[string]any) (inngestgo.Event, error) {
	d := make(map[string]any, len(data)+3)
	for k, v := range data {
		for _, r := range ReservedManualKeys {
			if k == r {
				return inngestgo.Event{}, fmt.Errorf("the data may not set %q: tasksync sets %s", k, strings.Join(ReservedManualKeys, ", "))
			}
		}
		d[k] = v
	}
	d["tenant_id"], d["code"], d["hash"] = tenant, code, hash
	if key != nil {
		key.Sign(reconciler.ManualRunEvent, d)
	}
	return inngestgo.Event{Name: reconciler.ManualRunEvent, Data: d, Timestamp: time.Now().UnixMilli()}, nil
}

// Sender sends events and reads their runs, for `tasksync trigger`.
type Sender struct {
	client inngestgo.Client
	api    string // the REST API's base URL
	key    string // signs REST API requests; empty in dev mode
	http   *http.Client
	reads  atomic.Int64 // numbers the reads of a run's state: see EventRuns
}

// NewSender returns a sender for the connection settings opts holds (the
// SDK's environment variables; ServeOrigin and AppPrefix are not used).
func NewSender(opts Options) (*Sender, error) {
	dev := opts.DevURL != ""
	co := inngestgo.ClientOpts{AppID: "tasksync-trigger", Dev: &dev, HTTPClient: opts.HTTPClient}
	s := &Sender{http: opts.HTTPClient}
	if s.http == nil {
		s.http = newHTTPClient()
	}
	switch {
	case dev:
		co.EventAPIBaseURL, co.APIBaseURL = &opts.DevURL, &opts.DevURL
		s.api = opts.DevURL
	case opts.BaseURL != "":
		co.EventAPIBaseURL, co.APIBaseURL = &opts.BaseURL, &opts.BaseURL
		s.api, s.key = opts.BaseURL, opts.SigningKey
	default:
		s.api, s.key = "https://api.inngest.com", opts.SigningKey
	}
	if !dev {
		if opts.EventKey == "" {
			return nil, errors.New("INNGEST_EVENT_KEY is not set: it is needed to send events to a signed Inngest server")
		}
		co.EventKey = &opts.EventKey
		co.Env = nonEmpty(opts.Env)
		co.SigningKey = nonEmpty(opts.SigningKey)
	}
	c, err := inngestgo.NewClient(co)
	if err != nil {
		return nil, err
	}
	s.client, s.api = c, strings.TrimSuffix(s.api, "/")
	return s, nil
}

// Send sends ev and returns the id Inngest gave it.
func (s *Sender) Send(ctx context.Context, ev inngestgo.Event) (string, error) {
	id, err := s.client.Send(ctx, ev)
	if err != nil {
		return "", fmt.Errorf("send %s: %w", ev.Name, err)
	}
	return id, nil
}

// EventRun is a run an event started, as Inngest's REST API shows it.
// That answer is not to be trusted on its own: it says Completed of a run
// that waits at a wait_for_event step, with no ended_at. tasksync's run
// records (root_task_runs) are the outcome; `tasksync trigger --wait`
// reads them, and this only for the run id and a run that failed without
// running (refused).
type EventRun struct {
	RunID   string          `json:"run_id"`
	Status  string          `json:"status"` // Running, Completed, Failed, Cancelled, ...
	EndedAt *string         `json:"ended_at"`
	Output  json.RawMessage `json:"output,omitempty"`
}

// Ended reports whether the run has ended: its status says so and it has
// an end time.
func (r EventRun) Ended() bool {
	if r.EndedAt == nil || *r.EndedAt == "" {
		return false
	}
	switch r.Status {
	case "Completed", "Failed", "Cancelled", "Overflowed", "Skipped":
		return true
	}
	return false
}

// Succeeded reports whether the run ended well.
func (r EventRun) Succeeded() bool { return r.Status == "Completed" }

// EventRuns reads the runs event id started (GET /v1/events/<id>/runs).
// The server caches that answer for 15 s, by URL: each read names itself
// in the query, so that it sees the run's state now.
func (s *Sender) EventRuns(ctx context.Context, id string) ([]EventRun, error) {
	u := fmt.Sprintf("%s/v1/events/%s/runs?read=%d-%d", s.api, url.PathEscape(id), time.Now().UnixNano(), s.reads.Add(1))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	if s.key != "" {
		req.Header.Set("Authorization", "Bearer "+s.key)
	}
	res, err := s.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("read the runs of event %s: %w", id, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, maxResponseBody))
	if err != nil {
		return nil, fmt.Errorf("read the runs of event %s: %w", id, err)
	}
	if res.StatusCode/100 != 2 {
		return nil, fmt.Errorf("read the runs of event %s: the server answered %d: %s", id, res.StatusCode, strings.TrimSpace(string(body)))
	}
	var out struct {
		Data []EventRun `json:"data"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, fmt.Errorf("read the runs of event %s: %w", id, err)
	}
	return out.Data, nil
}

// FollowRun polls the runs event id started, every poll, until one has
// ended, and returns it; it gives up when ctx ends (bound it with a
// timeout), returning the run as last seen, if any, with ctx's error.
func (s *Sender) FollowRun(ctx context.Context, id string, poll time.Duration) (EventRun, error) {
	var last EventRun
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		runs, err := s.EventRuns(ctx, id)
		switch {
		case err != nil && ctx.Err() == nil:
			return last, err
		case len(runs) > 0:
			last = runs[0]
			if last.Ended() {
				return last, nil
			}
		}
		select {
		case <-ctx.Done():
			return last, ctx.Err()
		case <-t.C:
		}
	}
}

// RunRecords reads tasksync's records of a run's attempts
// (store.Store.Run).
type RunRecords interface {
	Run(ctx context.Context, runID, tenant string) ([]reconciler.RunRecord, error)
}

// FollowedRun is what FollowRecorded learned of the run an event
// started.
type FollowedRun struct {
	RunID string
	// Final is the run's final attempt, from tasksync's run records: the
	// outcome.
	Final *reconciler.RunRecord
	// Refused is Inngest's view of a run that ended, failed, with no run
	// record: refused before it ran (see EventRun).
	Refused *EventRun
}

// FollowRecorded polls, every poll until ctx ends, Inngest for the run
// event id started (its event runs give the run id, nothing more: they
// say Completed of a run that waits) and records for that run's final
// attempt of definition code of tenant, and returns when there is one;
// on ctx's end, it returns what it saw with ctx's error.
func (s *Sender) FollowRecorded(ctx context.Context, records RunRecords, tenant, code, id string, poll time.Duration) (FollowedRun, error) {
	var out FollowedRun
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		runs, err := s.EventRuns(ctx, id)
		if err != nil && ctx.Err() == nil {
			return out, err
		}
		if len(runs) > 0 && runs[0].RunID != "" {
			ev := runs[0]
			out.RunID = ev.RunID
			recs, err := records.Run(ctx, out.RunID, tenant)
			switch {
			case err != nil && !errors.Is(err, reconciler.ErrNotFound) && ctx.Err() == nil:
				return out, err
			case err == nil:
				for i := range recs {
					if r := recs[i]; r.Code == code && r.Final && r.Status != reconciler.RunRunning {
						out.Final = &r
						return out, nil
					}
				}
			case ev.Ended() && !ev.Succeeded():
				out.Refused = &ev
				return out, nil
			}
		}
		select {
		case <-ctx.Done():
			return out, ctx.Err()
		case <-t.C:
		}
	}
}
