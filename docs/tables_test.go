package docs_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// tableRow is a line of a Markdown table: it starts with '|'.
func tableRow(line string) bool { return strings.HasPrefix(strings.TrimSpace(line), "|") }

// delimiterRow is a table's second line: | --- | :-: |.
func delimiterRow(line string) bool {
	s := strings.Trim(strings.TrimSpace(line), "|")
	if !strings.Contains(s, "-") {
		return false
	}
	return strings.Trim(s, "|-: ") == ""
}

// brokenTables lists where the Markdown text breaks a table: rows after a
// blank line that follows other rows (the blank line ends the table, and
// the rows after it render as text), and a run of rows whose second line
// is no | --- | delimiter (no table at all). Fenced code is skipped.
func brokenTables(text string) []string {
	var found []string
	lines := strings.Split(text, "\n")
	inFence, fence := false, ""
	lastNonBlankRow := false // the last non-blank line outside fences was a row
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		if m := fenceStart.FindStringSubmatch(line); m != nil {
			switch {
			case !inFence:
				inFence, fence = true, m[1]
			case m[1] == fence:
				inFence = false
			}
			lastNonBlankRow = false
			continue
		}
		if inFence {
			continue
		}
		if strings.TrimSpace(line) == "" {
			continue
		}
		row := tableRow(line)
		startsRun := row && (i == 0 || !tableRow(lines[i-1]))
		if startsRun {
			switch {
			case i > 0 && strings.TrimSpace(lines[i-1]) == "" && lastNonBlankRow:
				found = append(found, fmt.Sprintf("%d: a table row after a blank line that ends the table above: remove the blank line", i+1))
			case i+1 >= len(lines) || !delimiterRow(lines[i+1]):
				found = append(found, fmt.Sprintf("%d: table rows without a | --- | line after the first: they render as text", i+1))
			}
		}
		lastNonBlankRow = row
	}
	return found
}

// TestBrokenTablesDetector: the check finds a table cut by a blank line,
// and passes whole tables and rows inside code fences.
func TestBrokenTablesDetector(t *testing.T) {
	for _, tc := range []struct {
		text string
		want int
	}{
		{"| a | b |\n| --- | --- |\n| 1 | 2 |\n", 0},
		{"| a | b |\n| --- | --- |\n| 1 | 2 |\n\n| 3 | 4 |\n", 1},
		{"| a | b |\n| --- | --- |\n| 1 | 2 |\n\ntext\n\n| c |\n|:-:|\n", 0},
		{"```\n| a |\n\n| b |\n```\n", 0},
		{"text\n| a |\n| b |\n", 1},
	} {
		if got := brokenTables(tc.text); len(got) != tc.want {
			t.Errorf("%q: %d findings %q, want %d", tc.text, len(got), got, tc.want)
		}
	}
}

// TestTables: no Markdown page of the repository has a broken table.
func TestTables(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	var pages []string
	err = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && p != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "node_modules" || d.Name() == "bin") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(p, ".md") {
			pages = append(pages, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(pages) == 0 {
		t.Fatal("no Markdown pages found")
	}
	for _, page := range pages {
		b, err := os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, page)
		for _, f := range brokenTables(string(b)) {
			t.Errorf("%s:%s", rel, f)
		}
	}
}
