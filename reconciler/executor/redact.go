package executor

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"net/url"
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
	forms    []string // every registered form, longest first
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
	for _, f := range encodedForms(v) {
		if f != "" && !slices.Contains(r.forms, f) {
			r.forms = append(r.forms, f)
		}
	}
	// Longest first, so that a value containing another (or a form
	// containing another) is replaced whole.
	slices.SortStableFunc(r.forms, func(a, b string) int { return len(b) - len(a) })
	r.replacer = nil
}

// encodedForms is v as it may appear in text that carried it: raw,
// percent-encoded (query and path, either case of hex digits), escaped in
// a JSON, Go or HTML string, base64 (standard and URL alphabets, alone or
// embedded at any alignment in a longer encoded text) and hex.
func encodedForms(v string) []string {
	forms := []string{v}
	q := url.QueryEscape(v)
	forms = append(forms, q, strings.ReplaceAll(q, "+", "%20"), url.PathEscape(v), (&url.URL{Path: v}).EscapedPath())
	for _, f := range forms[1:] {
		forms = append(forms, lowerHexEscapes(f))
	}
	forms = append(forms, jsonForms(v)...)
	forms = append(forms, quoteBody(strconv.Quote(v)), quoteBody(strconv.QuoteToASCII(v)), html.EscapeString(v))
	b := []byte(v)
	for _, enc := range []*base64.Encoding{base64.RawStdEncoding, base64.RawURLEncoding} {
		forms = append(forms, enc.EncodeToString(b))
		// Embedded in a longer text, the value starts at any of the three
		// positions of a 3-byte group: the groups wholly inside it encode
		// the same whatever surrounds them.
		for skip := range 3 {
			if skip >= len(b) {
				break
			}
			rest := b[skip:]
			if core := enc.EncodeToString(rest[:len(rest)/3*3]); len(core) >= minEmbeddedBase64 {
				forms = append(forms, core)
			}
		}
	}
	h := hex.EncodeToString(b)
	return append(forms, h, strings.ToUpper(h))
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
// form cut short where text was shortened for display (ending in "...")
// is removed too.
func (r *Redactor) String(s string) string {
	r.mu.Lock()
	if r.replacer == nil && len(r.forms) > 0 {
		pairs := make([]string, 0, 2*len(r.forms))
		for _, f := range r.forms {
			pairs = append(pairs, f, Redacted)
		}
		r.replacer = strings.NewReplacer(pairs...)
	}
	rep, forms := r.replacer, r.forms
	r.mu.Unlock()
	if rep == nil {
		return s
	}
	s = rep.Replace(s)
	if !strings.Contains(s, "...") {
		return s
	}
	parts := strings.Split(s, "...")
	for i := range parts[:len(parts)-1] {
		parts[i] = trimPartial(parts[i], forms)
	}
	return strings.Join(parts, "...")
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

// Value returns a copy of the JSON value v (as encoding/json decodes it)
// with every string in it, map keys included, redacted, and any number or
// boolean whose text holds a secret replaced by Redacted. Parsing undoes
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

// Is reports whether the redacted error wraps target.
func (e *redactedError) Is(target error) bool { return errors.Is(e.err, target) }

// As finds a *StatusError only.
func (e *redactedError) As(target any) bool {
	if p, ok := target.(**StatusError); ok {
		return errors.As(e.err, p)
	}
	return false
}
