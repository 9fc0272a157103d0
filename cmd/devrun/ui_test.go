package main

import (
	"io"
	"mime"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/riveredge/tasksync/reconciler/inngest/inngesttest"
)

// rebuildHint is what a failure of the UI checks tells the developer: a
// bin/inngest built before the Makefile built the UI serves empty pages.
const rebuildHint = "bin/inngest was built without its web UI: rm bin/inngest && make inngest (docs/inngest.md, \"The dev server\")"

// assetRef finds the scripts and style sheets a page references under
// /assets/.
var assetRef = regexp.MustCompile(`(?:href|src)="(/assets/[^"]+\.(?:js|css))"|import\("(/assets/[^"]+\.js)"\)`)

// uiFetch gets a path of the dev server and returns its status, media type
// and body.
func uiFetch(t *testing.T, url string) (int, string, string) {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second}
	res, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 16<<20))
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	media, _, _ := mime.ParseMediaType(res.Header.Get("Content-Type"))
	return res.StatusCode, media, string(body)
}

// checkUIPage fails unless url serves the dev server UI's HTML shell, and
// returns the assets it references.
func checkUIPage(t *testing.T, url string) []string {
	t.Helper()
	code, media, body := uiFetch(t, url)
	if code == http.StatusOK && body == "" {
		t.Fatalf("GET %s = 200 with an empty body: %s", url, rebuildHint)
	}
	if code != http.StatusOK || media != "text/html" {
		t.Fatalf("GET %s = %d %q, want 200 text/html", url, code, media)
	}
	if !strings.Contains(body, "<title>Inngest") || !strings.Contains(body, `<div id="app">`) {
		t.Fatalf("GET %s serves no UI (%d bytes: %.200q): %s", url, len(body), body, rebuildHint)
	}
	var assets []string
	for _, m := range assetRef.FindAllStringSubmatch(body, -1) {
		assets = append(assets, m[1]+m[2])
	}
	return assets
}

// TestInngestUI: the dev server that make inngest builds serves its web
// UI: the page at / and at the paths make run's banner names, and the
// script and style sheet the page loads.
func TestInngestUI(t *testing.T) {
	dev, err := inngesttest.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Stop()

	assets := checkUIPage(t, dev.URL+"/")
	for _, path := range []string{"/apps", "/functions", "/runs", "/run?runID=01JF3TESTRUN"} {
		checkUIPage(t, dev.URL+path)
	}
	want := map[string]string{".js": "", ".css": ""} // extension → the first asset seen
	for _, a := range assets {
		for ext, seen := range want {
			if seen == "" && strings.HasSuffix(a, ext) {
				want[ext] = a
			}
		}
	}
	for ext, media := range map[string][]string{".js": {"application/javascript", "text/javascript"}, ".css": {"text/css"}} {
		a := want[ext]
		if a == "" {
			t.Fatalf("the UI's page references no %s asset under /assets/ (found %q): %s", ext, assets, rebuildHint)
		}
		code, got, body := uiFetch(t, dev.URL+a)
		if code != http.StatusOK || len(body) == 0 {
			t.Errorf("GET %s = %d with %d bytes, want 200 and a body: %s", a, code, len(body), rebuildHint)
		}
		ok := false
		for _, m := range media {
			ok = ok || got == m
		}
		if !ok {
			t.Errorf("GET %s: Content-Type %q, want one of %q", a, got, media)
		}
	}
	// A missing asset is a 404, not the page: the UI would otherwise run
	// HTML as a script.
	if code, _, _ := uiFetch(t, dev.URL+"/assets/no-such-file.js"); code != http.StatusNotFound {
		t.Errorf("GET /assets/no-such-file.js = %d, want 404", code)
	}
}
