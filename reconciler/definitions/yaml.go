package definitions

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/riveredge/tasksync/reconciler"
)

// document is one YAML document of a definition file, converted to the
// plain JSON values the schema validator reads, with its node tree kept to
// locate problems.
type document struct {
	root   *yaml.Node // the document's top node (not the DocumentNode)
	value  any        // map[string]any, []any, string, json.Number, bool or nil
	offset int        // lines of the file before the document's chunk
}

// pos returns the file line and column of the node at pointer (see locate).
func (d document) pos(pointer string, key bool) (line, col int) {
	n := locate(d.root, pointer, key)
	return n.Line + d.offset, n.Column
}

// posError is a problem found while reading YAML, at a file position.
type posError struct {
	line, col int
	msg       string
}

func (e *posError) Error() string { return e.msg }

// yamlLine matches the position yaml.v3 puts in its syntax errors.
var yamlLine = regexp.MustCompile(`^yaml: line (\d+): `)

// parseDocuments splits data into YAML documents and converts each. The
// file is cut at its "---" lines first, so that a syntax error in one
// document does not hide the problems of the next: YAML forbids "---" at
// the start of a line inside a document's content, so the cut is exact.
//
// The limits hold per file: at most MaxDocumentsPerFile documents, and
// MaxExpandedYAMLValues values in all (anchors and aliases expanded), so
// that no file costs more than a bounded amount of time and memory.
func parseDocuments(data []byte) ([]document, []*posError) {
	var docs []document
	var errs []*posError
	c := &converter{budget: reconciler.MaxExpandedYAMLValues}
	chunks := splitDocuments(data)
	if len(chunks) > reconciler.MaxDocumentsPerFile {
		return nil, []*posError{{line: chunks[reconciler.MaxDocumentsPerFile].offset + 1, col: 1,
			msg: fmt.Sprintf("more than %d documents in one file; split it into several files", reconciler.MaxDocumentsPerFile)}}
	}
	for _, ch := range chunks {
		d, e := parseChunk(c, ch.data, ch.offset)
		docs = append(docs, d...)
		errs = append(errs, e...)
		if c.budget < 0 || len(docs) > reconciler.MaxDocumentsPerFile {
			break
		}
	}
	return docs, errs
}

// chunk is a slice of a file holding one document, starting offset lines
// into the file.
type chunk struct {
	data   []byte
	offset int
}

// splitDocuments cuts data before every line that starts a document
// ("---" alone or followed by a space). Lines before the first document
// that hold only directives or comments stay with it.
func splitDocuments(data []byte) []chunk {
	var chunks []chunk
	start, startLine, line := 0, 0, 0
	hasContent := false
	for i := 0; i < len(data); {
		end := bytes.IndexByte(data[i:], '\n')
		if end < 0 {
			end = len(data)
		} else {
			end += i
		}
		l := data[i:end]
		if isDocStart(l) && hasContent {
			chunks = append(chunks, chunk{data: data[start:i], offset: startLine})
			start, startLine, hasContent = i, line, false
		}
		if t := bytes.TrimSpace(l); len(t) > 0 && t[0] != '#' && t[0] != '%' {
			hasContent = true
		}
		i = end + 1
		line++
		if isDocEnd(l) {
			// "..." ends a document; directives may follow for the next.
			chunks = append(chunks, chunk{data: data[start:min(i, len(data))], offset: startLine})
			start, startLine, hasContent = min(i, len(data)), line, false
		}
	}
	if start < len(data) || len(chunks) == 0 {
		chunks = append(chunks, chunk{data: data[start:], offset: startLine})
	}
	return chunks
}

func tooManyValues() string {
	return fmt.Sprintf("the file holds more than %d values, counting what anchors and aliases expand to: an alias bomb is refused (split a large file)", reconciler.MaxExpandedYAMLValues)
}

func isDocEnd(l []byte) bool {
	return bytes.HasPrefix(l, []byte("...")) && (len(l) == 3 || l[3] == ' ' || l[3] == '\t' || l[3] == '\r')
}

func isDocStart(l []byte) bool {
	return bytes.HasPrefix(l, []byte("---")) && (len(l) == 3 || l[3] == ' ' || l[3] == '\t' || l[3] == '\r')
}

func parseChunk(c *converter, data []byte, offset int) ([]document, []*posError) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []document
	var errs []*posError
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			return docs, errs
		}
		if err != nil {
			e := syntaxError(data, err)
			e.line += offset
			return docs, append(errs, e)
		}
		if len(n.Content) == 0 {
			continue // an empty document, e.g. a trailing "---"
		}
		root := n.Content[0]
		if root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null" {
			continue // a document holding only comments
		}
		v, err := c.convert(root, 1)
		if err != nil {
			pe, ok := err.(*posError)
			if !ok {
				pe = &posError{line: root.Line, col: root.Column, msg: err.Error()}
			}
			pe.line += offset
			errs = append(errs, pe)
			if c.budget < 0 {
				return docs, errs
			}
			continue
		}
		docs = append(docs, document{root: root, value: v, offset: offset})
	}
}

// maxLocateBytes bounds the work syntaxError spends finding the line of
// a syntax error in a large file (about log2(lines) parses of at most
// this much).
const maxLocateBytes = 256 << 10

// syntaxError turns a yaml.v3 syntax error into a positioned problem.
// yaml.v3 reports the line of the enclosing structure (and for parser
// errors counts it from 0) and never the column, so the line is found
// again: it is the first line whose prefix of the document fails with the
// same complaint. The column is where that line's content starts.
func syntaxError(data []byte, err error) *posError {
	raw := err.Error()
	problem := raw
	line := 1
	if m := yamlLine.FindStringSubmatch(raw); m != nil {
		line, _ = strconv.Atoi(m[1])
		problem = strings.TrimPrefix(raw, m[0])
	} else {
		problem = strings.TrimPrefix(raw, "yaml: ")
	}
	lines := bytes.SplitAfter(data, []byte("\n"))
	if len(data) <= maxLocateBytes {
		// Binary search for the shortest failing prefix: a handful of
		// parses whatever the file's length.
		ends := make([]int, len(lines))
		size := 0
		for i, l := range lines {
			size += len(l)
			ends[i] = size
		}
		fails := func(i int) bool {
			err := decodeAll(data[:ends[i]])
			return err != nil && sameProblem(err.Error(), problem)
		}
		lo, hi := 0, len(lines)-1
		if hi >= 0 && fails(hi) {
			for lo < hi {
				mid := (lo + hi) / 2
				if fails(mid) {
					hi = mid
				} else {
					lo = mid + 1
				}
			}
			line = lo + 1
		}
	}
	col := 1
	if line >= 1 && line <= len(lines) {
		text := string(lines[line-1])
		col = len(text) - len(strings.TrimLeft(text, " \t")) + 1
		if hint, hcol := explain(problem, text); hint != "" {
			problem += "; " + hint
			if hcol > 0 {
				col = hcol
			}
		}
	}
	if name, ok := strings.CutPrefix(problem, "unknown anchor '"); ok {
		// yaml.v3 quotes the whole name; the hint already names it, short.
		name, rest, _ := strings.Cut(name, "' referenced")
		problem = "unknown anchor '" + shorten(name) + "' referenced" + rest
	}
	return &posError{line: line, col: col, msg: "invalid YAML: " + problem}
}

// shorten shortens a piece of a file a message shows unquoted to
// excerptBytes, cut at a character boundary and marked with "...".
func shorten(s string) string {
	if len(s) <= excerptBytes {
		return s
	}
	cut := excerptBytes
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

func sameProblem(err, problem string) bool {
	if m := yamlLine.FindStringSubmatch(err); m != nil {
		err = strings.TrimPrefix(err, m[0])
	}
	return strings.TrimPrefix(err, "yaml: ") == problem
}

// decodeAll decodes every document of data and returns the first error.
func decodeAll(data []byte) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var n yaml.Node
		if err := dec.Decode(&n); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

// explain adds what to do to yaml.v3's terse complaints, given the text of
// the line at fault, and the column of the culprit when it is clear.
func explain(problem, line string) (string, int) {
	if strings.HasPrefix(problem, "unknown anchor '") {
		name := strings.TrimSuffix(strings.TrimPrefix(problem, "unknown anchor '"), "' referenced")
		name = shorten(name)
		return fmt.Sprintf("alias *%s has no anchor &%s before it in this document; anchors do not carry across '---'", name, name), 0
	}
	indent := line[:len(line)-len(strings.TrimLeft(line, " \t"))]
	if i := strings.IndexByte(indent, '\t'); i >= 0 {
		return "indent with spaces; YAML does not allow tabs for indentation", i + 1
	}
	for _, sep := range []string{": ", "- "} {
		i := strings.Index(line, sep)
		if i < 0 {
			continue
		}
		rest := strings.TrimLeft(line[i+len(sep):], " ")
		if rest != "" && strings.ContainsRune("*@`%", rune(rest[0])) {
			return fmt.Sprintf("a value starting with %q must be quoted, e.g. \"%s\"", rest[0], shorten(strings.TrimSpace(rest))), len(line) - len(rest) + 1
		}
	}
	switch {
	case strings.HasPrefix(problem, "unknown anchor '"):
		name := strings.TrimSuffix(strings.TrimPrefix(problem, "unknown anchor '"), "' referenced")
		return fmt.Sprintf("alias *%s has no anchor &%s before it in this document; anchors do not carry across '---'", name, name), 0
	case strings.Contains(problem, "did not find expected key"):
		return "check the indentation of this line against the lines above", 0
	case strings.Contains(problem, "mapping values are not allowed"):
		return "quote a value that contains \": \"", 0
	case strings.Contains(problem, "did not find expected ',' or '}'"):
		return "a { ... } mapping opened here is not closed, or its entries lack ','", 0
	case strings.Contains(problem, "did not find expected ',' or ']'"):
		return "a [ ... ] list opened here is not closed, or its items lack ','", 0
	case strings.Contains(problem, "found unexpected end of stream"):
		return "a quoted string or a bracket opened here is never closed", 0
	case strings.Contains(problem, "did not find expected '-' indicator"):
		return "list items must all start with '-' at the same indentation", 0
	}
	return "", 0
}

// converter turns a yaml.Node tree into JSON values, refusing deep nesting,
// alias bombs, duplicate keys and values JSON cannot hold.
type converter struct {
	budget  int                 // values still allowed, counting every alias expansion
	alias   *yaml.Node          // the outermost alias being expanded, where a bomb is reported
	merging map[*yaml.Node]bool // mappings being merged, to refuse a merge into itself
}

func (c *converter) convert(n *yaml.Node, depth int) (any, error) {
	if depth > reconciler.MaxDefinitionNesting {
		return nil, &posError{line: n.Line, col: n.Column,
			msg: fmt.Sprintf("nesting deeper than %d levels; flatten the document", reconciler.MaxDefinitionNesting)}
	}
	c.budget--
	if c.budget < 0 {
		at := n
		if c.alias != nil {
			at = c.alias
		}
		return nil, &posError{line: at.Line, col: at.Column,
			msg: tooManyValues()}
	}
	switch n.Kind {
	case yaml.AliasNode:
		if c.alias == nil {
			c.alias = n
			defer func() { c.alias = nil }()
		}
		return c.convert(n.Alias, depth)
	case yaml.ScalarNode:
		return scalar(n)
	}
	if t := n.ShortTag(); t != "!!seq" && t != "!!map" {
		return nil, &posError{line: n.Line, col: n.Column,
			msg: fmt.Sprintf("unsupported YAML tag %s; use plain strings, numbers, booleans, lists and mappings", shorten(n.Tag))}
	}
	switch n.Kind {
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for _, item := range n.Content {
			v, err := c.convert(item, depth+1)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	case yaml.MappingNode:
		out := make(map[string]any, len(n.Content)/2)
		if c.merging == nil {
			c.merging = map[*yaml.Node]bool{}
		}
		c.merging[n] = true
		defer delete(c.merging, n)
		if err := c.mapping(n, depth, out, map[string]*yaml.Node{}); err != nil {
			return nil, err
		}
		return out, nil
	}
	return nil, &posError{line: n.Line, col: n.Column, msg: "unsupported YAML node"}
}

// mapping fills out with n's pairs, applying merge keys ("<<") the way
// YAML 1.1 defines them: explicit keys win over merged ones.
func (c *converter) mapping(n *yaml.Node, depth int, out map[string]any, seen map[string]*yaml.Node) error {
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			merges = append(merges, v)
			continue
		}
		if k.Kind != yaml.ScalarNode {
			return &posError{line: k.Line, col: k.Column, msg: "mapping keys must be plain strings"}
		}
		if prev, dup := seen[k.Value]; dup {
			return &posError{line: k.Line, col: k.Column,
				msg: fmt.Sprintf("duplicate key %s (first at line %d); remove one of them", excerpt(k.Value), prev.Line)}
		}
		seen[k.Value] = k
		val, err := c.convert(v, depth+1)
		if err != nil {
			return err
		}
		out[k.Value] = val
	}
	for _, m := range merges {
		if err := c.merge(m, depth, out); err != nil {
			return err
		}
	}
	return nil
}

func (c *converter) merge(m *yaml.Node, depth int, out map[string]any) error {
	at := m
	for m.Kind == yaml.AliasNode {
		m = m.Alias
	}
	c.budget--
	if c.budget < 0 {
		return &posError{line: at.Line, col: at.Column,
			msg: tooManyValues()}
	}
	if depth > reconciler.MaxDefinitionNesting {
		return &posError{line: at.Line, col: at.Column, msg: fmt.Sprintf("merge keys (<<) nested deeper than %d levels", reconciler.MaxDefinitionNesting)}
	}
	switch m.Kind {
	case yaml.MappingNode:
		if c.merging[m] {
			return &posError{line: at.Line, col: at.Column, msg: "a merge key (<<) refers to the mapping it is in; remove it"}
		}
		if c.merging == nil {
			c.merging = map[*yaml.Node]bool{}
		}
		c.merging[m] = true
		defer delete(c.merging, m)
		merged := map[string]any{}
		if err := c.mapping(m, depth, merged, map[string]*yaml.Node{}); err != nil {
			return err
		}
		for k, v := range merged {
			if _, ok := out[k]; !ok {
				out[k] = v
			}
		}
		return nil
	case yaml.SequenceNode:
		for _, item := range m.Content {
			if err := c.merge(item, depth+1, out); err != nil {
				return err
			}
		}
		return nil
	}
	return &posError{line: m.Line, col: m.Column, msg: "a merge key (<<) needs a mapping or a list of mappings"}
}

// scalar converts a resolved scalar to its JSON value. Timestamps stay the
// strings the user wrote; the schema and the checks parse them.
func scalar(n *yaml.Node) (any, error) {
	switch n.ShortTag() {
	case "!!str", "!!timestamp", "!!binary":
		return n.Value, nil
	case "!!null":
		return nil, nil
	case "!!bool":
		var b bool
		if err := n.Decode(&b); err != nil {
			return nil, &posError{line: n.Line, col: n.Column, msg: fmt.Sprintf("invalid boolean %s", excerpt(n.Value))}
		}
		return b, nil
	case "!!int":
		var i int64
		if err := n.Decode(&i); err == nil {
			return json.Number(strconv.FormatInt(i, 10)), nil
		}
		var u uint64
		if err := n.Decode(&u); err == nil {
			return json.Number(strconv.FormatUint(u, 10)), nil
		}
		return nil, &posError{line: n.Line, col: n.Column, msg: fmt.Sprintf("integer %s is out of range", shorten(n.Value))}
	case "!!float":
		var f float64
		if err := n.Decode(&f); err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return nil, &posError{line: n.Line, col: n.Column,
				msg: fmt.Sprintf("number %s cannot be represented in JSON; quote it if you mean a string", shorten(n.Value))}
		}
		return json.Number(strconv.FormatFloat(f, 'g', -1, 64)), nil
	}
	return nil, &posError{line: n.Line, col: n.Column,
		msg: fmt.Sprintf("unsupported YAML tag %s; use plain strings, numbers, booleans, lists and mappings", shorten(n.Tag))}
}

// locate finds the node at a JSON pointer ("/spec/trigger/cron") below
// root, following aliases and merge keys. With key set it returns the
// mapping key's node instead of the value's, which is where an unknown or
// duplicate field should be reported. It returns the deepest node it
// reached, so a problem is never left without a position.
func locate(root *yaml.Node, pointer string, key bool) *yaml.Node {
	n := root
	if pointer == "" {
		return n
	}
	tokens := strings.Split(strings.TrimPrefix(pointer, "/"), "/")
	for i, tok := range tokens {
		tok = unescapeToken(tok)
		for n.Kind == yaml.AliasNode {
			n = n.Alias
		}
		last := i == len(tokens)-1
		switch n.Kind {
		case yaml.MappingNode:
			k, v := findKey(n, tok)
			if k == nil {
				return n
			}
			if last && key {
				return k
			}
			n = v
		case yaml.SequenceNode:
			idx, err := strconv.Atoi(tok)
			if err != nil || idx < 0 || idx >= len(n.Content) {
				return n
			}
			n = n.Content[idx]
		default:
			return n
		}
	}
	return n
}

// findKey returns the key and value nodes for name in mapping n, looking
// through merge keys after the explicit keys.
func findKey(n *yaml.Node, name string) (k, v *yaml.Node) {
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].ShortTag() == "!!merge" {
			merges = append(merges, n.Content[i+1])
			continue
		}
		if n.Content[i].Value == name {
			return n.Content[i], n.Content[i+1]
		}
	}
	for _, m := range merges {
		for m.Kind == yaml.AliasNode {
			m = m.Alias
		}
		var list []*yaml.Node
		if m.Kind == yaml.SequenceNode {
			list = m.Content
		} else {
			list = []*yaml.Node{m}
		}
		for _, item := range list {
			for item.Kind == yaml.AliasNode {
				item = item.Alias
			}
			if item.Kind != yaml.MappingNode {
				continue
			}
			if k, v := findKey(item, name); k != nil {
				return k, v
			}
		}
	}
	return nil, nil
}
