package deftest

import (
	"strings"
	"testing"
)

// TestRareTemplatesFireRarely: every frequent schedule of the templates
// is replaced in GenerateRare's, and nothing else changes shape.
func TestRareTemplatesFireRarely(t *testing.T) {
	for i, tmpl := range rareTemplates {
		for _, frequent := range []string{"@hourly", "$IVLm", `"$MIN * * * *"`, `"0 6 * * 1"`} {
			if strings.Contains(tmpl, frequent) {
				t.Errorf("rare template %d still holds %s", i, frequent)
			}
		}
		if strings.Count(tmpl, "\n") != strings.Count(templates[i], "\n") {
			t.Errorf("rare template %d has another shape than template %d", i, i)
		}
	}
	if rareTemplates == templates {
		t.Error("the rare templates are the templates")
	}
}
