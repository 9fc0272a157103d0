package reconciler

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strings"
)

// WriteOutcome prints, as `tasksync trigger --wait` does, the final
// attempt r of run runID: its status, a workflow's steps with their
// outcomes and outputs, a task's output, the error, and where to read
// the run. Everything the tenant wrote is escaped (EscapeText).
func (r RunRecord) WriteOutcome(w io.Writer, runID string) {
	fmt.Fprintf(w, "trigger: run %s %s (attempt %d)\n", EscapeText(runID), r.Status, r.Attempt)
	var steps []StepOutcome
	if len(r.Steps) > 0 && json.Unmarshal(r.Steps, &steps) == nil {
		for _, s := range steps {
			fmt.Fprintf(w, "  step %s: %s\n", EscapeText(s.ID), EscapeText(s.Status))
			if s.Error != "" {
				fmt.Fprintf(w, "    error: %s\n", EscapeText(s.Error))
			}
			WriteIndented(w, "    ", s.Output)
		}
	}
	WriteIndented(w, "", r.Output)
	if r.Error != "" {
		at := ""
		if r.FailedStep != "" {
			at = " at step " + EscapeText(r.FailedStep)
		}
		fmt.Fprintf(w, "trigger: failed%s: %s\n", at, EscapeText(r.Error))
	}
	fmt.Fprintf(w, "trigger: see %s\n", RunPointers(runID))
}

// RunPointers names where a run's record is read: the status API and the
// web page of the daemon.
func RunPointers(runID string) string {
	return fmt.Sprintf("the status API's /v1/runs/%[1]s, or the web page /ui/runs/%[1]s", url.PathEscape(runID))
}

// WriteIndented prints a JSON value indented, each line after prefix;
// nothing for none or null.
func WriteIndented(w io.Writer, prefix string, v json.RawMessage) {
	if len(v) == 0 || string(v) == "null" {
		return
	}
	var out bytes.Buffer
	if json.Indent(&out, v, prefix, "  ") == nil {
		// The output is the tenant's: each line escaped, as validate
		// prints file names (no terminal controls, no bidi overrides).
		for _, line := range strings.Split(out.String(), "\n") {
			fmt.Fprintf(w, "%s%s\n", prefix, EscapeText(line))
		}
	}
}
