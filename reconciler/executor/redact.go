package executor

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

// Redactor removes secret values from what leaves a run: errors, stdout,
// stderr, parsed results and responses, and so logs, run records and the
// engine's run output. A value is removed in the forms it takes on its
// way (percent-encoded in a URL, escaped in JSON or a quoted string,
// base64, hex), since a server or a script echoes it back in those.
//
// It is safe for concurrent use. The zero value is ready to use.
type Redactor struct {
	mu       sync.Mutex
	forms    []string        // every registered form, longest first
	known    map[string]bool // the forms, for deduplication
	base64   []string        // the base64 forms, also found across line breaks
	replacer *strings.Replacer
}

// Redacted is what a secret value is replaced with.
const Redacted = "[redacted]"

// minEmbeddedBase64 is the shortest base64 core of a value embedded in a
// larger encoded text that is registered: shorter ones would redact
// innocent text (16 characters are 96 bits).
const minEmbeddedBase64 = 16

// Add remembers a value to redact, with its encoded forms.
func (r *Redactor) Add(v string) {
	if v == "" {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.known == nil {
		r.known = map[string]bool{}
	}
	forms, b64 := encodedForms(v)
	for _, f := range forms {
		if f != "" && !r.known[f] {
			r.known[f] = true
			r.forms = append(r.forms, f)
		}
	}
	for _, f := range b64 {
		if !slices.Contains(r.base64, f) {
			r.base64 = append(r.base64, f)
		}
	}
	// Longest first, so that a value containing another (or a form
	// containing another) is replaced whole.
	slices.SortStableFunc(r.forms, func(a, b string) int { return len(b) - len(a) })
	r.replacer = nil
}

// encodedForms is v as it may appear in text that carried it, and the
// base64 forms among them (which String also finds broken into lines).
//
// A form is a representation of v's bytes (raw, base64 in the standard
// and URL alphabets, alone or embedded at any alignment in a longer
// encoded text, hex) under up to two escapes: first percent-encoding
// (query and path, either case of hex digits) or escaping in a JSON, Go
// or HTML string, then, outermost, percent-encoding or JSON escaping
// again (a URL carried in another URL's query, a JSON document in a query
// or in a JSON string, a query in JSON). Duplicates are dropped.
func encodedForms(v string) (forms, b64 []string) {
	seen := map[string]bool{}
	add := func(f string) bool {
		if f == "" || seen[f] {
			return false
		}
		seen[f] = true
		forms = append(forms, f)
		return true
	}
	reps := []string{v}
	b := []byte(v)
	for _, enc := range []*base64.Encoding{base64.RawStdEncoding, base64.RawURLEncoding} {
		b64 = append(b64, enc.EncodeToString(b))
		// Embedded in a longer text, the value starts at any of the three
		// positions of a 3-byte group: the groups wholly inside it encode
		// the same whatever surrounds them.
		for skip := range 3 {
			if skip >= len(b) {
				break
			}
			rest := b[skip:]
			if core := enc.EncodeToString(rest[:len(rest)/3*3]); len(core) >= minEmbeddedBase64 {
				b64 = append(b64, core)
			}
		}
	}
	h := hex.EncodeToString(b)
	reps = append(append(reps, b64...), h, strings.ToUpper(h))
	for _, rep := range reps {
		add(rep)
		for _, inner := range innerEscapes(rep) {
			add(inner)
		}
	}
	for _, inner := range slices.Clone(forms) {
		for _, outer := range outerEscapes(inner) {
			add(outer)
		}
	}
	return forms, slices.Compact(b64)
}

// innerEscapes is s percent-encoded (query with "+" or "%20" for a space,
// path, a URL path as net/url writes it, each also with lowercase hex
// digits) and escaped in a JSON, Go or HTML string.
func innerEscapes(s string) []string {
	if unreserved(s) {
		return nil
	}
	out := percentForms(s)
	out = append(out, jsonForms(s)...)
	out = append(out, pythonForms(s)...)
	return append(out, quoteBody(strconv.Quote(s)), quoteBody(strconv.QuoteToASCII(s)), html.EscapeString(s))
}

// pythonForms is s as Python's repr and ascii write a str (an error
// message's quoted value, a printed list or dict), without the quotes:
// with "'" escaped (the quote repr picks when s holds both kinds) and
// without (when it picks '"'), and with every non-ASCII character escaped
// (ascii).
func pythonForms(s string) []string {
	return []string{pythonRepr(s, true, false), pythonRepr(s, false, false), pythonRepr(s, true, true)}
}

// pythonRepr escapes s as Python's repr does inside single quotes
// (escapeQuote) or double ones, escaping non-ASCII characters too for
// ascii (asciiOnly).
func pythonRepr(s string, escapeQuote, asciiOnly bool) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\'' && escapeQuote:
			b.WriteString(`\'`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f || r >= 0x80 && r <= 0xa0 || asciiOnly && r >= 0x80 && r <= 0xff:
			fmt.Fprintf(&b, `\x%02x`, r)
		case asciiOnly && r > 0xff && r <= 0xffff:
			fmt.Fprintf(&b, `\u%04x`, r)
		case asciiOnly && r > 0xffff:
			fmt.Fprintf(&b, `\U%08x`, r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// outerEscapes is s escaped once more where texts nest most: percent-
// encoded and JSON-escaped.
func outerEscapes(s string) []string {
	if unreserved(s) {
		return nil
	}
	return append(percentForms(s), jsonForms(s)...)
}

// unreserved reports whether s has only characters that no escape
// changes (RFC 3986's unreserved characters): letters, digits, "-", ".",
// "_" and "~".
func unreserved(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~') {
			return false
		}
	}
	return true
}

// percentForms is s percent-encoded for a query (space as "+" and as
// "%20"), a path segment and a URL path, each also with lowercase hex
// digits.
func percentForms(s string) []string {
	q := url.QueryEscape(s)
	out := []string{q, strings.ReplaceAll(q, "+", "%20"), url.PathEscape(s), (&url.URL{Path: s}).EscapedPath()}
	for _, f := range out[:4] {
		out = append(out, lowerHexEscapes(f))
	}
	return out
}

// jsonForms is v escaped in a JSON string (without the quotes): as Go
// writes it with and without HTML escaping, as Python's json.dumps writes
// it (every non-ASCII character as \uXXXX), and with "/" escaped as "\/"
// (PHP).
func jsonForms(v string) []string {
	var forms []string
	for _, escapeHTML := range []bool{true, false} {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(escapeHTML)
		if enc.Encode(v) == nil {
			forms = append(forms, quoteBody(strings.TrimSuffix(buf.String(), "\n")))
		}
	}
	ascii := asciiJSON(v)
	forms = append(forms, ascii, strings.ReplaceAll(ascii, "/", `\/`))
	for _, f := range forms[:2] {
		forms = append(forms, strings.ReplaceAll(f, "/", `\/`))
	}
	return forms
}

// asciiJSON escapes v as Python's json.dumps does with ensure_ascii.
func asciiJSON(v string) string {
	var b strings.Builder
	for _, r := range v {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\b':
			b.WriteString(`\b`)
		case r == '\f':
			b.WriteString(`\f`)
		case r >= 0x20 && r < 0x7f:
			b.WriteRune(r)
		case r > 0xffff:
			r -= 0x10000
			fmt.Fprintf(&b, `\u%04x\u%04x`, 0xd800+(r>>10), 0xdc00+(r&0x3ff))
		case r == utf8.RuneError:
			b.WriteString(`\ufffd`)
		default:
			fmt.Fprintf(&b, `\u%04x`, r)
		}
	}
	return b.String()
}

func quoteBody(s string) string { return s[1 : len(s)-1] }

// lowerHexEscapes writes the %XX escapes of s with lowercase hex digits.
func lowerHexEscapes(s string) string {
	b := []byte(s)
	for i := 0; i+2 < len(b); i++ {
		if b[i] == '%' {
			b[i+1], b[i+2] = lowerHex(b[i+1]), lowerHex(b[i+2])
			i += 2
		}
	}
	return string(b)
}

func lowerHex(c byte) byte {
	if c >= 'A' && c <= 'F' {
		return c + 'a' - 'A'
	}
	return c
}

// String removes every remembered value, in each of its forms, from s. A
// base64 form broken into lines (by a line break, "\r\n" or "\n", or its
// JSON escape, anywhere in it: Python's encodebytes, PEM and MIME wrap at
// 76 or 64 characters) is removed with its line breaks. A form cut short
// where text was shortened for display (ending in "...") is removed too.
func (r *Redactor) String(s string) string {
	r.mu.Lock()
	if r.replacer == nil && len(r.forms) > 0 {
		pairs := make([]string, 0, 2*len(r.forms))
		for _, f := range r.forms {
			pairs = append(pairs, f, Redacted)
		}
		r.replacer = strings.NewReplacer(pairs...)
	}
	rep, forms, b64 := r.replacer, r.forms, r.base64
	r.mu.Unlock()
	if rep == nil {
		return s
	}
	s = rep.Replace(redactWrapped(s, b64))
	if !strings.Contains(s, "...") {
		return s
	}
	parts := strings.Split(s, "...")
	for i := range parts[:len(parts)-1] {
		parts[i] = trimPartial(parts[i], forms)
	}
	return strings.Join(parts, "...")
}

// redactWrapped replaces each base64 form (of forms) found in s when the
// line breaks inside runs of base64 lines are ignored. Only runs of
// several lines are looked at: a form on one line is the replacer's.
func redactWrapped(s string, forms []string) string {
	if len(forms) == 0 || !strings.Contains(s, "\n") && !strings.Contains(s, `\n`) {
		return s
	}
	shortest := len(forms[0])
	for _, f := range forms {
		shortest = min(shortest, len(f))
	}
	var out strings.Builder
	done := 0 // s[:done] is in out
	for i := 0; i < len(s); {
		if !isBase64Char(s[i]) {
			i++
			continue
		}
		start, end, breaks := i, i, false
		for end < len(s) {
			if isBase64Char(s[end]) {
				end++
				continue
			}
			if n := lineBreak(s[end:]); n > 0 && end+n < len(s) && isBase64Char(s[end+n]) {
				end, breaks = end+n, true
				continue
			}
			break
		}
		if breaks && end-start >= shortest {
			if run, ok := redactRun(s[start:end], forms); ok {
				out.WriteString(s[done:start])
				out.WriteString(run)
				done = end
			}
		}
		i = end
	}
	if done == 0 {
		return s
	}
	out.WriteString(s[done:])
	return out.String()
}

// redactRun replaces, in a run of base64 lines, every form found once the
// line breaks are dropped; ok is false when there is none.
func redactRun(run string, forms []string) (string, bool) {
	joined := make([]byte, 0, len(run))
	at := make([]int, 0, len(run)) // the index in run of each byte of joined
	for i := 0; i < len(run); {
		if n := lineBreak(run[i:]); n > 0 {
			i += n
			continue
		}
		joined, at = append(joined, run[i]), append(at, i)
		i++
	}
	cut := make([]bool, len(run)) // bytes of run inside a form
	found := false
	for _, f := range forms {
		for off := 0; off+len(f) <= len(joined); {
			k := bytes.Index(joined[off:], []byte(f))
			if k < 0 {
				break
			}
			k += off
			for j := at[k]; j <= at[k+len(f)-1]; j++ {
				cut[j] = true
			}
			found, off = true, k+1
		}
	}
	if !found {
		return run, false
	}
	var b strings.Builder
	for i := 0; i < len(run); i++ {
		if !cut[i] {
			b.WriteByte(run[i])
			continue
		}
		b.WriteString(Redacted)
		for i+1 < len(run) && cut[i+1] {
			i++
		}
	}
	return b.String(), true
}

// isBase64Char reports whether c is in the standard or URL base64
// alphabet, padding included.
func isBase64Char(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' ||
		c == '+' || c == '/' || c == '-' || c == '_' || c == '='
}

// lineBreak is the length of the line break s starts with: "\r\n", "\n",
// or the same escaped in a JSON string; 0 if none.
func lineBreak(s string) int {
	for _, nl := range []string{"\r\n", "\n", `\r\n`, `\n`} {
		if strings.HasPrefix(s, nl) {
			return len(nl)
		}
	}
	return 0
}

// Truncated removes a secret's form cut short at the end of s: use it on
// text cut at a size limit, after String.
func (r *Redactor) Truncated(s string) string {
	r.mu.Lock()
	forms := r.forms
	r.mu.Unlock()
	return trimPartial(s, forms)
}

// minPartial is the shortest beginning of a form that trimPartial
// removes: shorter ones tell next to nothing, and removing them would
// clip innocent text before every "...".
const minPartial = 4

// trimPartial removes from the end of s the longest beginning of any form
// (of at least minPartial bytes).
func trimPartial(s string, forms []string) string {
	cut := minPartial - 1
	for _, f := range forms {
		for k := min(len(f)-1, len(s)); k > cut; k-- {
			if strings.HasSuffix(s, f[:k]) {
				cut = k
				break
			}
		}
	}
	if cut < minPartial {
		return s
	}
	return s[:len(s)-cut]
}

// Value returns a copy of the JSON value v (as encoding/json decodes it,
// best with numbers as json.Number: see ParseJSON) with every string in
// it, map keys included, redacted, and any number or boolean whose text
// holds a secret replaced by Redacted. Parsing undoes
// escapes (a "\u0073ecret" in JSON text is "secret" once parsed), so a
// parsed value is redacted after parsing, not only as text.
func (r *Redactor) Value(v any) any {
	switch x := v.(type) {
	case nil:
		return nil
	case string:
		return r.String(x)
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[r.String(k)] = r.Value(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = r.Value(e)
		}
		return out
	case json.Number:
		if r.String(string(x)) != string(x) {
			return Redacted
		}
		return x
	}
	text := fmt.Sprint(v)
	if b, err := json.Marshal(v); err == nil {
		text = string(b)
	}
	if r.String(text) != text {
		return Redacted
	}
	return v
}

// ParseJSON parses data holding exactly one JSON value, with numbers as
// json.Number: a number keeps its text ("12345678901234567890", which a
// float64 would turn into 12345678901234567000), so that Value still
// finds a secret in it, and it is written back as the same number. ok is
// false when data is not one JSON value.
func ParseJSON(data []byte) (v any, ok bool) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if dec.Decode(&v) != nil {
		return nil, false
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, false
	}
	return v, true
}

// Error returns err with its message redacted. errors.Is still sees what
// err wraps (ErrRefused, context errors), and errors.As finds a
// *StatusError, whose fields are redacted; nothing else of err is
// reachable, so no caller can unwrap the unredacted message.
func (r *Redactor) Error(err error) error {
	if err == nil {
		return nil
	}
	return &redactedError{msg: r.String(err.Error()), err: err}
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }

// Is reports whether the redacted error wraps target itself. The chain
// is compared by identity only, never through the Is methods of the
// errors in it: some libraries' Is compares messages, calling Error on
// the target (CEL's does), which matches unrelated errors and panics on
// a target that has no message, such as the Inngest SDK's zero
// NoRetryError value.
func (e *redactedError) Is(target error) bool {
	if target == nil || !reflect.TypeOf(target).Comparable() {
		return false
	}
	return wraps(e.err, target, 0)
}

// maxChain bounds the walk of an error chain.
const maxChain = 100

// wraps reports whether err or an error it wraps is target, by identity.
func wraps(err, target error, depth int) bool {
	for ; err != nil && depth < maxChain; depth++ {
		if err == target {
			return true
		}
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			err = u.Unwrap()
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				if wraps(e, target, depth+1) {
					return true
				}
			}
			return false
		default:
			return false
		}
	}
	return false
}

// As finds a *StatusError only.
func (e *redactedError) As(target any) bool {
	if p, ok := target.(**StatusError); ok {
		return errors.As(e.err, p)
	}
	return false
}
