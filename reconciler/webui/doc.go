// Package webui is the daemon's read-only web page, served under /ui/:
// an overview of the reconciles, the tenants, their definitions, runs and
// validation errors, for people who would rather look than read JSON.
//
// It shows nothing the status API would not: every page is built from
// the API's own answers, got by calling its handler in the same process
// with the caller's token, so tenant scoping, redaction and filters are
// the API's. The pages are html/template (every value escaped), served
// with a strict Content-Security-Policy, and everything they use is
// embedded in the binary. No form changes anything: the only POSTs set
// or clear the cookie that carries the caller's own token.
package webui
