package inngest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/inngest/inngestgo"
)

// A sync registers an app's functions with the Inngest server: tasksync
// asks the app's SDK handler, in-process, for the functions' configuration
// (the SDK's in-band sync answer to a PUT signed with the app's key), then
// posts the registration to the server's /fn/register itself, through the
// registry's HTTP client. The SDK's own (out-of-band) sync would post it
// through http.DefaultClient and never close a successful response's
// body: every sync would leave a connection, and two goroutines, behind.

// inBandAnswer is the part of the SDK's in-band sync answer a
// registration is made of.
type inBandAnswer struct {
	AppID     string            `json:"app_id"`
	Env       *string           `json:"env"`
	Framework *string           `json:"framework"`
	Platform  *string           `json:"platform"`
	URL       string            `json:"url"`
	Functions []json.RawMessage `json:"functions"`
}

// registration is the body of a POST to /fn/register, as the SDK sends
// it (github.com/inngest/inngest/pkg/sdk.RegisterRequest).
type registration struct {
	V            string            `json:"v"`
	URL          string            `json:"url"`
	DeployType   string            `json:"deployType"`
	SDK          string            `json:"sdk"`
	Framework    string            `json:"framework"`
	AppName      string            `json:"appName"`
	Functions    []json.RawMessage `json:"functions"`
	Headers      registerHeaders   `json:"headers"`
	Capabilities capabilities      `json:"capabilities"`
}

type registerHeaders struct {
	Env      string `json:"env"`
	Platform string `json:"platform"`
}

// capabilities are those the SDK announces: the server may sync the app
// in-band (a signed PUT the SDK answers itself).
type capabilities struct {
	InBandSync string `json:"in_band_sync"`
	TrustProbe string `json:"trust_probe"`
	Connect    string `json:"connect"`
}

// newDevSyncKey is the key a dev-mode registry signs its in-process
// in-band sync requests with: the SDK serves in-band syncs only when
// signed, and the dev server signs nothing. It never leaves the process.
func newDevSyncKey() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("dev sync key: %w", err)
	}
	return "signkey-dev-" + hex.EncodeToString(b), nil
}

// Sync registers a tenant's app with the Inngest server.
func (r *Registry) Sync(ctx context.Context, tenant string) error {
	r.mu.RLock()
	a := r.apps[tenant]
	r.mu.RUnlock()
	if a == nil {
		return ErrNoApp
	}
	err := r.sync(ctx, tenant, a)
	if err != nil {
		r.metrics.syncs.WithLabelValues(tenant, SyncError).Inc()
		return err
	}
	r.metrics.syncs.WithLabelValues(tenant, SyncSuccess).Inc()
	return nil
}

// RegistrationHash is the hex SHA-256 of the registration a sync of the
// tenant's app would send now: its functions with their configuration,
// its URL and the SDK's version. Equal hashes mean equal registrations.
func (r *Registry) RegistrationHash(ctx context.Context, tenant string) (string, error) {
	r.mu.RLock()
	a := r.apps[tenant]
	r.mu.RUnlock()
	if a == nil {
		return "", ErrNoApp
	}
	body, err := r.registrationBody(ctx, tenant, a)
	if err != nil {
		return "", fmt.Errorf("registration of %s: %w", a.id, err)
	}
	sum := sha256.Sum256(body)
	return hex.EncodeToString(sum[:]), nil
}

// registrationBody is the body of the app's registration: the SDK's
// in-band sync answer, in the form of the SDK's own registration.
func (r *Registry) registrationBody(ctx context.Context, tenant string, a *app) ([]byte, error) {
	answer, err := r.appConfig(ctx, tenant, a)
	if err != nil {
		return nil, err
	}
	// The SDK lists the functions in no fixed order: sorted by id, the
	// same app always makes the same body (and RegistrationHash).
	type function struct {
		id  string
		raw json.RawMessage
	}
	fns := make([]function, len(answer.Functions))
	for i, raw := range answer.Functions {
		var fn struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(raw, &fn); err != nil {
			return nil, fmt.Errorf("the SDK's function configuration: %w", err)
		}
		fns[i] = function{fn.ID, raw}
	}
	slices.SortFunc(fns, func(x, y function) int { return strings.Compare(x.id, y.id) })
	for i, fn := range fns {
		answer.Functions[i] = fn.raw
	}
	return json.Marshal(registration{
		V: "1", URL: answer.URL, DeployType: "ping", SDK: inngestgo.HeaderValueSDK,
		Framework: deref(answer.Framework), AppName: answer.AppID, Functions: answer.Functions,
		Headers:      registerHeaders{Env: deref(answer.Env), Platform: deref(answer.Platform)},
		Capabilities: capabilities{InBandSync: "v1", TrustProbe: "v1", Connect: "v1"},
	})
}

func (r *Registry) sync(ctx context.Context, tenant string, a *app) error {
	body, err := r.registrationBody(ctx, tenant, a)
	if err != nil {
		return fmt.Errorf("sync %s: %w", a.id, err)
	}
	status, msg, err := r.postRegistration(ctx, body, r.opts.SigningKey)
	if (status == http.StatusUnauthorized || status == http.StatusForbidden) && r.opts.SigningKeyFallback != "" {
		status, msg, err = r.postRegistration(ctx, body, r.opts.SigningKeyFallback)
	}
	if err != nil {
		return fmt.Errorf("sync %s: %w", a.id, err)
	}
	if status/100 != 2 {
		err := fmt.Errorf("sync %s: the server answered %d: %s", a.id, status, msg)
		// Only a refusal of the functions themselves counts: not an
		// authentication failure, a rate limit or an outage.
		if m := strings.ToLower(msg); strings.Contains(m, "invalid") && !strings.Contains(m, "unauthorized") {
			err = fmt.Errorf("%w: %w", ErrRejected, err)
		}
		return err
	}
	return nil
}

// appConfig asks a tenant's SDK handler, in-process, for its in-band sync
// answer: the app's id, URL and function configurations.
func (r *Registry) appConfig(ctx context.Context, tenant string, a *app) (inBandAnswer, error) {
	appURL := r.ServeOrigin() + ServePath + tenant
	body, err := json.Marshal(map[string]string{"url": appURL})
	if err != nil {
		return inBandAnswer{}, err
	}
	sig, err := inngestgo.Sign(ctx, time.Now(), []byte(r.syncKey), body)
	if err != nil {
		return inBandAnswer{}, fmt.Errorf("sign the in-band sync request: %w", err)
	}
	req := httptest.NewRequestWithContext(ctx, http.MethodPut, appURL, bytes.NewReader(body))
	req.Header.Set(inngestgo.HeaderKeySignature, sig)
	req.Header.Set(inngestgo.HeaderKeyContentType, "application/json")
	b, err := r.built(a)
	if err != nil {
		return inBandAnswer{}, err
	}
	rec := httptest.NewRecorder()
	b.handler.ServeHTTP(rec, req)
	if rec.Code/100 != 2 {
		return inBandAnswer{}, fmt.Errorf("the SDK answered %d: %s", rec.Code, strings.TrimSpace(rec.Body.String()))
	}
	var answer inBandAnswer
	if err := json.Unmarshal(rec.Body.Bytes(), &answer); err != nil {
		return inBandAnswer{}, fmt.Errorf("the SDK's in-band sync answer: %w", err)
	}
	if answer.Functions == nil {
		answer.Functions = []json.RawMessage{} // an app without functions
	}
	return answer, nil
}

// postRegistration posts a registration to the server with key (none in
// dev mode) and returns the server's status and, on failure, its message.
// The response body is read and closed whatever happens.
func (r *Registry) postRegistration(ctx context.Context, body []byte, key string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.registerURL(), bytes.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	inngestgo.SetBasicRequestHeaders(req)
	if r.opts.DevURL == "" {
		if r.opts.Env != "" {
			req.Header.Set(inngestgo.HeaderKeyEnv, r.opts.Env)
		}
		if key != "" {
			hashed, err := hashedSigningKey(key)
			if err != nil {
				return 0, "", err
			}
			req.Header.Set(inngestgo.HeaderKeyAuthorization, "Bearer "+hashed)
		}
	}
	res, err := r.client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, maxResponseBody))
	if err != nil {
		return 0, "", fmt.Errorf("read the server's answer: %w", err)
	}
	if res.StatusCode/100 == 2 {
		return res.StatusCode, "", nil
	}
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(b, &e) == nil && e.Error != "" {
		return res.StatusCode, e.Error, nil
	}
	return res.StatusCode, strings.TrimSpace(string(b)), nil
}

// registerURL is where registrations are posted.
func (r *Registry) registerURL() string {
	base := "https://api.inngest.com" // Inngest Cloud, as the SDK
	switch {
	case r.opts.DevURL != "":
		base = r.opts.DevURL
	case r.opts.BaseURL != "":
		base = r.opts.BaseURL
	}
	return strings.TrimSuffix(base, "/") + "/fn/register"
}

// signingKeyPrefix is the "signkey-<env>-" prefix of a signing key.
var signingKeyPrefix = regexp.MustCompile(`^signkey-\w+-`)

// hashedSigningKey is how a signing key authenticates a request to the
// server, as the SDK sends it: the prefix, then the hex SHA-256 of the
// key's bytes.
func hashedSigningKey(key string) (string, error) {
	prefix := signingKeyPrefix.FindString(key)
	raw, err := hex.DecodeString(strings.TrimPrefix(key, prefix))
	if err != nil {
		return "", fmt.Errorf("the signing key is not hex after its %q prefix: set INNGEST_SIGNING_KEY to the key Inngest gave", prefix)
	}
	sum := sha256.Sum256(raw)
	return prefix + hex.EncodeToString(sum[:]), nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
