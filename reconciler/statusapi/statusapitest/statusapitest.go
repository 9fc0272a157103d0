// Package statusapitest is a client of the status API for tests: a
// request with or without a bearer token, its status and body.
package statusapitest

import (
	"io"
	"net/http"
	"testing"
)

// Request sends method to url with `Authorization: Bearer token` (none
// when token is empty) and returns the status code and the body. It fails
// the test when the request cannot be made or its body read.
func Request(t testing.TB, method, url, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: read the body: %v", method, url, err)
	}
	return res.StatusCode, string(b)
}
