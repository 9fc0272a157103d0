package reconciler

import (
	"encoding/json"
	"testing"
)

// TestOutputTextKeepsNumbers: outputs parsed with json.Number (so that a
// number keeps its text for redaction) are stored as the same numbers, not
// as strings and not rounded through a float64.
func TestOutputTextKeepsNumbers(t *testing.T) {
	out := map[string]any{"big": json.Number("12345678901234567890"), "f": json.Number("1.5e3"), "s": "<&>"}
	if got, want := outputText(out, 1<<10), `{"big":12345678901234567890,"f":1.5e3,"s":"<&>"}`; got != want {
		t.Errorf("outputText = %s, want %s", got, want)
	}
}
