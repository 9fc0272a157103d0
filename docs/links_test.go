// Package docs_test checks the documentation: every relative link in
// README.md and docs/*.md leads to a file of the repository, and every
// #anchor to a heading of the page it names.
package docs_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

var (
	// inlineLink is [text](target) or ![alt](target), with an optional
	// "title" after the target.
	inlineLink = regexp.MustCompile(`!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)`)
	// refLink is a reference definition: [label]: target.
	refLink    = regexp.MustCompile(`(?m)^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)`)
	codeSpan   = regexp.MustCompile("`+[^`]*`+")
	heading    = regexp.MustCompile(`(?m)^#{1,6}\s+(.+?)\s*#*\s*$`)
	notInSlug  = regexp.MustCompile(`[^\p{L}\p{N}\s_-]`)
	external   = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9+.-]*:`)
	fenceStart = regexp.MustCompile("^\\s*(```|~~~)")
)

// TestRelativeLinks: every link in README.md and docs/*.md that is not a
// URL resolves to a file or directory inside the repository, and its
// #anchor, if any, to a heading of that file.
func TestRelativeLinks(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	pages, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	pages = append([]string{filepath.Join(root, "README.md")}, pages...)
	anchors := map[string]map[string]bool{}
	checked := 0
	for _, page := range pages {
		rel, _ := filepath.Rel(root, page)
		for _, target := range links(t, page) {
			checked++
			if external.MatchString(target) {
				continue // a URL (https:, mailto:): not this test's business
			}
			path, anchor, _ := strings.Cut(target, "#")
			file := page
			if path != "" {
				if strings.HasPrefix(path, "/") {
					t.Errorf("%s: link %q is absolute: make it relative to the page", rel, target)
					continue
				}
				file = filepath.Join(filepath.Dir(page), filepath.FromSlash(path))
				if r, err := filepath.Rel(root, file); err != nil || r == ".." || strings.HasPrefix(r, ".."+string(filepath.Separator)) {
					t.Errorf("%s: link %q leads outside the repository", rel, target)
					continue
				}
				if _, err := os.Stat(file); err != nil {
					t.Errorf("%s: link %q: no such file in the repository", rel, target)
					continue
				}
			}
			if anchor == "" || !strings.HasSuffix(file, ".md") {
				continue
			}
			if anchors[file] == nil {
				anchors[file] = headingAnchors(t, file)
			}
			if !anchors[file][anchor] {
				t.Errorf("%s: link %q: %s has no heading #%s", rel, target, filepath.Base(file), anchor)
			}
		}
	}
	if checked == 0 {
		t.Fatal("no links found: the pattern or the pages have moved")
	}
}

// links returns the link targets of a Markdown page, outside code.
func links(t *testing.T, page string) []string {
	t.Helper()
	var out []string
	for _, line := range prose(t, page) {
		line = codeSpan.ReplaceAllString(line, "")
		for _, m := range inlineLink.FindAllStringSubmatch(line, -1) {
			out = append(out, m[1])
		}
		for _, m := range refLink.FindAllStringSubmatch(line, -1) {
			out = append(out, m[1])
		}
	}
	return out
}

// headingAnchors returns the anchors GitHub gives a page's headings:
// lower case, punctuation dropped, spaces as hyphens, a repeated one
// numbered from -1.
func headingAnchors(t *testing.T, page string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	seen := map[string]int{}
	for _, line := range prose(t, page) {
		m := heading.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		slug := strings.ReplaceAll(notInSlug.ReplaceAllString(strings.ToLower(m[1]), ""), " ", "-")
		if n := seen[slug]; n > 0 {
			out[slug+"-"+strconv.Itoa(n)] = true
		} else {
			out[slug] = true
		}
		seen[slug]++
	}
	return out
}

// prose returns the lines of a page outside fenced code blocks.
func prose(t *testing.T, page string) []string {
	t.Helper()
	data, err := os.ReadFile(page)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	fence := ""
	for _, line := range strings.Split(string(data), "\n") {
		if m := fenceStart.FindStringSubmatch(line); m != nil {
			switch {
			case fence == "":
				fence = m[1]
			case fence == m[1]:
				fence = ""
			}
			continue
		}
		if fence == "" {
			out = append(out, line)
		}
	}
	return out
}
