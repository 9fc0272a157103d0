package webui

import (
	"bytes"
	"context"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"
)

//go:embed templates/*.html static/*
var assets embed.FS

// Path is where the page is served; the daemon redirects / here.
const Path = "/ui/"

// The cookie that carries the caller's status token, base64url-encoded
// (a token may hold bytes a cookie may not). It is sent only to /ui
// paths, never read by a script, never sent by another site.
const (
	cookieName = "tasksync_ui_token"
	cookiePath = "/ui"
)

// maxFormBytes bounds the body of the sign-in form.
const maxFormBytes = 8 << 10

// contentSecurityPolicy allows the page's own stylesheet, script and
// icon and nothing else: no inline script or style, no other origin, no
// framing, forms posting only to the page itself.
const contentSecurityPolicy = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; " +
	"form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// Options configure the page.
type Options struct {
	// API is the status API (statusapi.NewHandler). Every page is built
	// from its answers to requests made in this process with the
	// caller's token, so it decides what the caller may see.
	API http.Handler
	// InngestUIURL, if set, is the base URL of the Inngest UI: the pages
	// link a function and a run there. Only http and https are accepted.
	InngestUIURL string
	Logger       *slog.Logger
	// Now is the clock of relative times; default time.Now.
	Now func() time.Time
}

type ui struct {
	opts Options
	// open is whether the status API takes no token: the page then has
	// no sign-in.
	open    bool
	inngest *url.URL
	pages   map[string]*template.Template
	static  http.Handler
}

// NewHandler returns the page's handler for the paths under Path. It
// fails when opts.InngestUIURL is not an http or https URL.
func NewHandler(opts Options) (http.Handler, error) {
	if opts.API == nil {
		return nil, errors.New("web UI: no status API handler")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	u := &ui{opts: opts}
	if opts.InngestUIURL != "" {
		base, err := url.Parse(opts.InngestUIURL)
		if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
			return nil, fmt.Errorf("the Inngest UI URL must be an http or https URL, got %q", opts.InngestUIURL)
		}
		u.inngest = base
	}
	u.open = apiIsOpen(opts.API)
	pages, err := parsePages(u.funcs())
	if err != nil {
		return nil, err
	}
	u.pages = pages
	static, err := fs.Sub(assets, "static")
	if err != nil {
		return nil, err
	}
	u.static = http.StripPrefix(Path+"static/", http.FileServerFS(static))

	mux := http.NewServeMux()
	mux.HandleFunc("GET /ui/{$}", u.overview)
	mux.HandleFunc("GET /ui/login", u.loginForm)
	mux.HandleFunc("POST /ui/login", u.login)
	mux.HandleFunc("POST /ui/logout", u.logout)
	mux.HandleFunc("GET /ui/static/{file}", u.asset)
	mux.HandleFunc("GET /ui/t/{tenant}", u.tenant)
	mux.HandleFunc("GET /ui/t/{tenant}/errors", u.tenantErrors)
	mux.HandleFunc("GET /ui/t/{tenant}/d/{code}", u.definition)
	mux.HandleFunc("GET /ui/t/{tenant}/runs", u.tenantRuns)
	mux.HandleFunc("GET /ui/runs/{run_id}", u.run)
	mux.HandleFunc("GET /ui/d/{uuid}", u.byUUID)
	mux.HandleFunc("/ui/", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			u.fail(w, r, http.StatusMethodNotAllowed, "This page is read-only: "+r.Method+" is not allowed.")
			return
		}
		u.fail(w, r, http.StatusNotFound, "There is no page at this address.")
	})
	// The two POSTs change no server state, but a cross-site form must not
	// sign a browser in with someone else's token either.
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.fail(w, r, http.StatusForbidden, "This form may only be sent from this page.")
	}))
	return secure(cop.Handler(mux)), nil
}

// openProbe is a request the status API answers without reading any
// state: a run id it refuses (400) once the token check has passed, which
// it makes first (401 without a token when it has tokens; 503 when their
// file cannot be read).
const openProbe = "/v1/runs/%20"

// apiIsOpen reports whether the status API answers without a token.
func apiIsOpen(api http.Handler) bool {
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, openProbe, nil)
	if err != nil {
		return false
	}
	rec := &recorder{header: http.Header{}}
	api.ServeHTTP(rec, req)
	return rec.status != http.StatusUnauthorized && rec.status != http.StatusServiceUnavailable
}

// secure sets the headers every response of the page carries.
func secure(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", contentSecurityPolicy)
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Cross-Origin-Opener-Policy", "same-origin")
		hd.Set("Cross-Origin-Resource-Policy", "same-origin")
		hd.Set("Cache-Control", "no-store")
		h.ServeHTTP(w, r)
	})
}

func (u *ui) asset(w http.ResponseWriter, r *http.Request) {
	u.static.ServeHTTP(w, r)
}

// token is the caller's status token from the cookie, "" without one.
func token(r *http.Request) string {
	c, err := r.Cookie(cookieName)
	if err != nil {
		return ""
	}
	b, err := base64.RawURLEncoding.DecodeString(c.Value)
	if err != nil {
		return ""
	}
	return string(b)
}

// apiError is an answer of the status API other than 200.
type apiError struct {
	Status  int
	Message string
}

func (e *apiError) Error() string { return fmt.Sprintf("status API: %d %s", e.Status, e.Message) }

// recorder keeps the status API's answer to an in-process request.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (rec *recorder) Header() http.Header { return rec.header }

func (rec *recorder) Write(b []byte) (int, error) {
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	return rec.body.Write(b)
}

func (rec *recorder) WriteHeader(status int) {
	if rec.status == 0 {
		rec.status = status
	}
}

// get asks the status API for apiPath (its segments already escaped)
// with the query q and the caller's token, as the caller would, and
// decodes its JSON answer into v. An answer other than 200 is an
// *apiError with the API's message.
func (u *ui) get(r *http.Request, tok, apiPath string, q url.Values, v any) error {
	target := &url.URL{Path: apiPath, RawQuery: q.Encode()}
	if p, err := url.PathUnescape(apiPath); err == nil {
		target.Path, target.RawPath = p, apiPath
	}
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, target.String(), nil)
	if err != nil {
		return err
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	rec := &recorder{header: http.Header{}}
	u.opts.API.ServeHTTP(rec, req)
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	if rec.status != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(rec.body.Bytes(), &e) != nil || e.Error == "" {
			e.Error = http.StatusText(rec.status)
		}
		return &apiError{Status: rec.status, Message: e.Error}
	}
	if err := json.Unmarshal(rec.body.Bytes(), v); err != nil {
		return fmt.Errorf("decode %s: %w", apiPath, err)
	}
	return nil
}

// apiPath joins the status API's path from segments, each escaped.
func apiPath(segments ...string) string {
	var b strings.Builder
	b.WriteString("/v1")
	for _, s := range segments {
		b.WriteByte('/')
		b.WriteString(url.PathEscape(s))
	}
	return b.String()
}

// uiPath joins a path of the page from segments, each escaped.
func uiPath(segments ...string) string {
	var b strings.Builder
	b.WriteString("/ui")
	for _, s := range segments {
		b.WriteByte('/')
		b.WriteString(url.PathEscape(s))
	}
	return b.String()
}

// apiFailure answers a page whose data the status API refused: the
// sign-in form for 401, the API's status and message otherwise.
func (u *ui) apiFailure(w http.ResponseWriter, r *http.Request, err error) {
	var ae *apiError
	if !errors.As(err, &ae) {
		u.opts.Logger.Error("web UI", "path", r.URL.Path, "err", err)
		u.fail(w, r, http.StatusInternalServerError, "The status API's answer could not be read.")
		return
	}
	switch ae.Status {
	case http.StatusUnauthorized:
		u.render(w, r, http.StatusUnauthorized, "login", loginPage{Message: "Sign in with a status token to see this page.", Failed: token(r) != ""})
	case http.StatusForbidden:
		u.fail(w, r, http.StatusForbidden, "Your token may not read this page: "+ae.Message+".")
	case http.StatusNotFound:
		u.fail(w, r, http.StatusNotFound, "Not found: "+ae.Message+".")
	default:
		u.fail(w, r, ae.Status, "The status API answered: "+ae.Message+".")
	}
}

// errorPage is the data of the error page.
type errorPage struct {
	Status  int
	Title   string
	Message string
}

func (u *ui) fail(w http.ResponseWriter, r *http.Request, status int, msg string) {
	u.render(w, r, status, "error", errorPage{Status: status, Title: http.StatusText(status), Message: msg})
}

// frame is what every page's layout shows besides the page's own data.
type frame struct {
	// Open is whether the status API takes no token (no sign-in).
	Open     bool
	SignedIn bool
	Now      time.Time
	Crumbs   []crumb
	Page     any
}

type crumb struct {
	Label string
	Href  string
}

func (u *ui) render(w http.ResponseWriter, r *http.Request, status int, name string, data any, crumbs ...crumb) {
	t, ok := u.pages[name]
	if !ok {
		u.opts.Logger.Error("web UI: no such page", "page", name)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", frame{Open: u.open, SignedIn: !u.open && token(r) != "", Now: u.opts.Now(), Crumbs: crumbs, Page: data}); err != nil {
		u.opts.Logger.Error("web UI: render", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if r.Method == http.MethodHead {
		return
	}
	if _, err := w.Write(buf.Bytes()); err != nil {
		return // the client went away
	}
}

// parsePages parses each page with the layout and the shared blocks.
func parsePages(funcs template.FuncMap) (map[string]*template.Template, error) {
	entries, err := fs.Glob(assets, "templates/*.html")
	if err != nil {
		return nil, err
	}
	pages := map[string]*template.Template{}
	for _, e := range entries {
		name := strings.TrimSuffix(path.Base(e), ".html")
		if name == "layout" {
			continue
		}
		t, err := template.New(name).Funcs(funcs).ParseFS(assets, "templates/layout.html", e)
		if err != nil {
			return nil, fmt.Errorf("web UI: parse %s: %w", e, err)
		}
		pages[name] = t
	}
	return pages, nil
}
