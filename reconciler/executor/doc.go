// Package executor runs what Inngest invokes: api_call requests through an
// SSRF guard, with templates and secrets resolved only at execution, and
// python_script runs in a sandbox of their own.
package executor
