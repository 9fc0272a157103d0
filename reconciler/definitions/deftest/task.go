package deftest

import (
	"fmt"
	"strings"
)

// Task is a ScheduledTask definition for a test, written out by String.
// Only Code is needed: the zero values of the other fields make a valid
// api_call every 5 minutes to https://a.example.com.
type Task struct {
	// Code is metadata.code.
	Code string
	// Name is metadata.name, left out when empty.
	Name string
	// Trigger is spec.trigger as a YAML flow mapping, such as
	// "{cron: '0 2 * * *'}"; "{interval: 5m}" when empty.
	Trigger string
	// Type is spec.type; "api_call" when empty.
	Type string
	// Config is spec.config as a YAML flow mapping;
	// "{url: 'https://a.example.com'}" when empty.
	Config string
	// Spec holds further spec entries, one "key: value" each, such as
	// "retries: 0".
	Spec []string
}

// String is the task's YAML document, in block style, one spec entry a
// line, ending in a newline.
func (t Task) String() string {
	var b strings.Builder
	b.WriteString("apiVersion: tasksync/v1\nkind: ScheduledTask\n")
	if t.Name != "" {
		fmt.Fprintf(&b, "metadata: {code: %s, name: %s}\n", t.Code, t.Name)
	} else {
		fmt.Fprintf(&b, "metadata: {code: %s}\n", t.Code)
	}
	fmt.Fprintf(&b, "spec:\n  trigger: %s\n  type: %s\n  config: %s\n",
		or(t.Trigger, "{interval: 5m}"), or(t.Type, "api_call"), or(t.Config, "{url: 'https://a.example.com'}"))
	for _, e := range t.Spec {
		fmt.Fprintf(&b, "  %s\n", e)
	}
	return b.String()
}

func or(s, otherwise string) string {
	if s == "" {
		return otherwise
	}
	return s
}
