package reconciler

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestOutputJSONKeepsNumbers: outputs parsed with json.Number (so that a
// number keeps its text for redaction) are stored as the same numbers, not
// as strings and not rounded through a float64.
func TestOutputJSONKeepsNumbers(t *testing.T) {
	out := map[string]any{"big": json.Number("12345678901234567890"), "f": json.Number("1.5e3"), "s": "<&>"}
	if got, want := string(OutputJSON(out, 1<<10)), `{"big":12345678901234567890,"f":1.5e3,"s":"<&>"}`; got != want {
		t.Errorf("OutputJSON = %s, want %s", got, want)
	}
}

// TestOutputJSONTruncatesToAValue: an output over the cap is stored as a
// JSON value that says so (never JSON cut in the middle), its head valid
// UTF-8; nil stays nil.
func TestOutputJSONTruncatesToAValue(t *testing.T) {
	big := map[string]any{"body": strings.Repeat("é", 3000)}
	got := OutputJSON(big, 1024)
	var v struct {
		Truncated bool
		Bytes     int
		Head      string
	}
	if err := json.Unmarshal(got, &v); err != nil || !v.Truncated || v.Bytes < 6000 || len(got) > 1100 || !utf8.ValidString(v.Head) || !strings.HasPrefix(v.Head, `{"body":"é`) {
		t.Errorf("OutputJSON(6 KB, 1024) = %s (%v)", got, err)
	}
	if got := OutputJSON(nil, 10); got != nil {
		t.Errorf("OutputJSON(nil) = %s, want nil", got)
	}
}
