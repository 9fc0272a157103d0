package deftest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// PerTenant is the number of definitions Generate writes per tenant: one of
// each shape in templates.
const PerTenant = 10

// Generate writes a deterministic tree of tenants × PerTenant valid
// definitions under dir, one file per definition plus one script per
// tenant. The shapes mix every trigger kind, both task types and two
// workflows, with values that vary by tenant as real trees do.
func Generate(dir string, tenants int) error {
	return generate(dir, tenants, &templates)
}

// GenerateRare writes the tree Generate writes, with schedules that fire
// rarely: daily and weekly crons spread over the day and the week by
// tenant, and a 24 h interval (due at 00:00 UTC), instead of hourly
// crons and intervals of 5 to 59 minutes. A daemon benchmark registers
// it with a dev server that runs every fire on the same machine: with
// Generate's tree, 1,000 tenants start about 1,000 runs at each hour and
// many at every minute, and the benchmark measures the server's run
// execution, not the registration. With this one, 1,000 tenants fire
// about 1.5 times a minute, and all at once only at 00:00 UTC.
func GenerateRare(dir string, tenants int) error {
	return generate(dir, tenants, &rareTemplates)
}

func generate(dir string, tenants int, templates *[PerTenant]string) error {
	for t := range tenants {
		tenant := fmt.Sprintf("tenant-%05d", t)
		tdir := filepath.Join(dir, tenant)
		if err := os.MkdirAll(filepath.Join(tdir, "scripts"), 0o755); err != nil {
			return err
		}
		script := fmt.Sprintf("import json\nprint(json.dumps({\"tenant\": %q, \"ok\": True}))\n", tenant)
		if err := os.WriteFile(filepath.Join(tdir, "scripts", "job.py"), []byte(script), 0o644); err != nil {
			return err
		}
		for i, tmpl := range templates {
			body := strings.NewReplacer(
				"$TENANT", tenant,
				"$MIN", fmt.Sprint(t%60),
				"$MM", fmt.Sprintf("%02d", t%60),
				"$HOUR", fmt.Sprint(t%24),
				"$N", fmt.Sprint(t%50*100),
				"$IVL", fmt.Sprint(5+t%55),
				"$DOW", fmt.Sprint(t%7),
			).Replace(tmpl)
			name := filepath.Join(tdir, fmt.Sprintf("def-%02d.yaml", i))
			if err := os.WriteFile(name, []byte(body), 0o644); err != nil {
				return err
			}
		}
	}
	return nil
}

// rareTemplates are templates with every frequent schedule made daily or
// weekly (GenerateRare); the codes stay the same.
var rareTemplates = func() [PerTenant]string {
	rare := strings.NewReplacer(
		`trigger: {interval: $IVLm}`, `trigger: {interval: 24h}`,
		`trigger: {cron: "@hourly"}`, `trigger: {cron: "$MIN $HOUR * * $DOW"}`,
		`cron: "$MIN * * * *"`, `cron: "$MIN $HOUR * * *"`,
		`cron: "0 6 * * 1"`, `cron: "$MIN 6 * * 1"`,
	)
	var out [PerTenant]string
	for i, t := range templates {
		out[i] = rare.Replace(t)
	}
	return out
}()

var templates = [PerTenant]string{
	`# Nightly export for $TENANT
apiVersion: tasksync/v1
kind: ScheduledTask
metadata:
  code: nightly-export
  name: Nightly export
  labels: {team: data}
spec:
  trigger:
    cron: "$MIN $HOUR * * *"
    timezone: Europe/Berlin
  type: api_call
  config:
    method: POST
    url: https://export.example.com/run
    headers: {Authorization: "Bearer ${secret:EXPORT_TOKEN}"}
    body: {tenant: $TENANT, format: csv}
    timeout: 2m
  retries: 3
  retry_delay: 60s
`,
	`apiVersion: tasksync/v1
kind: ScheduledTask
metadata:
  code: poll-queue
spec:
  trigger: {interval: $IVLm}
  type: api_call
  config: {url: "https://queue.example.com/poll?tenant=$TENANT"}
`,
	`apiVersion: tasksync/v1
kind: ScheduledTask
metadata:
  code: on-signup
  description: Welcome mail when a user signs up
spec:
  trigger:
    event: user/signed-up
    if: event.data.plan != "free"
  type: api_call
  config:
    method: POST
    url: https://mail.example.com/send
    body:
      to: "{{ event.data.email }}"
      template: welcome
`,
	`apiVersion: tasksync/v1
kind: ScheduledTask
metadata:
  code: cleanup-inline
spec:
  trigger: {cron: "@hourly"}
  type: python_script
  config:
    script: |
      import os, json
      print(json.dumps({"removed": 0, "tenant": os.environ.get("TENANT")}))
    env: {TENANT: $TENANT}
    timeout: 30s
    memory_mb: 128
`,
	`apiVersion: tasksync/v1
kind: Workflow
metadata:
  code: expense-approval
  name: Expense approval
spec:
  trigger:
    event: expense/submitted
    if: event.data.amount > $N
  concurrency: 10
  steps:
    - id: notify
      api_call:
        method: POST
        url: https://chat.example.com/hooks/managers
        body: {text: "Approve {{ event.data.id }} of {{ event.data.amount }}?"}
    - id: decision
      wait_for_event: {event: expense/decided, match: data.expense_id, timeout: 72h}
    - id: approved
      if: steps.decision != null && steps.decision.data.approved == true
      send_event: {name: message/send, data: {text: "Expense {{ event.data.id }} approved"}}
    - id: expired
      if: steps.decision == null
      send_event: {name: message/send, data: {text: "Expense {{ event.data.id }} timed out"}}
    - id: record
      api_call:
        method: POST
        url: https://ledger.example.com/expenses
        body: {id: "{{ event.data.id }}", approved: "{{ steps.decision != null }}"}
`,
	`apiVersion: tasksync/v1
kind: ScheduledTask
metadata:
  code: weekly-script
spec:
  trigger: {cron: "0 6 * * 1", timezone: America/New_York}
  type: python_script
  config:
    file: scripts/job.py
    args: [--tenant, $TENANT]
`,
	`apiVersion: tasksync/v1
kind: ScheduledTask
metadata:
  code: migration-once
spec:
  trigger: {at: "2036-06-01T09:$MM:00+02:00"}
  type: api_call
  config: {method: POST, url: https://ops.example.com/migrate, expect_status: [200, 202]}
  retries: 0
`,
	`apiVersion: tasksync/v1
kind: ScheduledTask
metadata:
  code: hourly-sync
spec:
  trigger:
    cron: "$MIN * * * *"
    jitter: 30s
  type: api_call
  config: {url: https://sync.example.com/pull, timeout: 45s}
`,
	`apiVersion: tasksync/v1
kind: ScheduledTask
metadata:
  code: notify
spec:
  trigger: {event: message/send}
  type: api_call
  config:
    method: POST
    url: https://chat.example.com/hooks/general
    headers: {X-Tenant: "{{ tenant }}"}
    body: {text: "{{ event.data.text }}"}
`,
	`apiVersion: tasksync/v1
kind: Workflow
metadata:
  code: trial-reminder
spec:
  trigger: {event: trial/started}
  steps:
    - id: wait
      sleep: 72h
    - id: remind
      api_call:
        method: POST
        url: https://mail.example.com/send
        body: {to: "{{ event.data.email }}", template: trial-reminder}
`,
}
