package definitions

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v5"

	"github.com/riveredge/tasksync/reconciler"
	"github.com/riveredge/tasksync/schema"
)

// schemaValidator is the compiled JSON Schema plus its raw form, which
// error messages read to say what would have been right.
//
// Besides the whole schema it holds one variant per kind and task type:
// the whole schema with its if/then selection already made for that
// kind (and type). A document whose kind and type are known is checked
// against its variant, which accepts exactly what the whole schema accepts
// for such a document but spares the validator the conditions; any other
// document is checked against the whole schema, whose messages then say
// what kind or type would be valid.
type schemaValidator struct {
	compiledSchema
	variants map[variantKey]compiledSchema
}

type compiledSchema struct {
	compiled *jsonschema.Schema
	raw      map[string]any
}

type variantKey struct {
	kind reconciler.Kind
	typ  reconciler.TaskType
}

func compileSchema() (*schemaValidator, error) {
	var raw map[string]any
	if err := json.Unmarshal(schema.Definition, &raw); err != nil {
		return nil, fmt.Errorf("read embedded schema: %w", err)
	}
	// The published schema names its shared parts with $ref, for editors
	// and readers. Validating through a $ref costs the validator a nested
	// evaluation with its own bookkeeping, for every use in every document;
	// the schema has no recursion, so the copy compiled here has each
	// reference replaced by what it names. It accepts exactly the same
	// documents. Messages read descriptions from this copy too.
	defs, _ := raw["$defs"].(map[string]any)
	flat := inlineRefs(raw, defs, 0).(map[string]any)
	whole, err := compileRaw(schema.ID, flat)
	if err != nil {
		return nil, err
	}
	sv := &schemaValidator{compiledSchema: whole, variants: map[variantKey]compiledSchema{}}
	for key, spec := range map[variantKey]map[string]any{
		{reconciler.KindScheduledTask, reconciler.TaskAPICall}:      taskVariant(flat, "apiCall"),
		{reconciler.KindScheduledTask, reconciler.TaskPythonScript}: taskVariant(flat, "pythonScript"),
		{reconciler.KindWorkflow, ""}:                               defOf(flat, "workflowSpec"),
		{reconciler.KindTenantSettings, ""}:                         defOf(flat, "tenantSettingsSpec"),
	} {
		v := deepCopy(flat).(map[string]any)
		delete(v, "allOf")
		props := v["properties"].(map[string]any)
		props["spec"] = spec
		if key.kind == reconciler.KindTenantSettings {
			props["metadata"] = defOf(flat, "tenantSettingsMetadata")
		} else {
			// What the allOf branch of a definition kind adds.
			props["metadata"] = defOf(flat, "metadata")
			v["required"] = []any{"apiVersion", "kind", "metadata", "spec"}
		}
		cs, err := compileRaw(fmt.Sprintf("%s/variants/%s-%s.json", strings.TrimSuffix(schema.ID, ".json"), key.kind, key.typ), v)
		if err != nil {
			return nil, err
		}
		sv.variants[key] = cs
	}
	return sv, nil
}

func compileRaw(id string, raw map[string]any) (compiledSchema, error) {
	data, err := json.Marshal(raw)
	if err != nil {
		return compiledSchema{}, fmt.Errorf("encode schema %s: %w", id, err)
	}
	c := jsonschema.NewCompiler()
	c.Draft = jsonschema.Draft2020
	c.AssertFormat = true
	if err := c.AddResource(id, bytes.NewReader(data)); err != nil {
		return compiledSchema{}, fmt.Errorf("load schema %s: %w", id, err)
	}
	compiled, err := c.Compile(id)
	if err != nil {
		return compiledSchema{}, fmt.Errorf("compile schema %s: %w", id, err)
	}
	return compiledSchema{compiled: compiled, raw: raw}, nil
}

func defOf(raw map[string]any, name string) map[string]any {
	return deepCopy(raw["$defs"].(map[string]any)[name]).(map[string]any)
}

// taskVariant is taskSpec with its config selection made.
func taskVariant(raw map[string]any, config string) map[string]any {
	spec := defOf(raw, "taskSpec")
	delete(spec, "allOf")
	spec["properties"].(map[string]any)["config"] = defOf(raw, config)
	return spec
}

func deepCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = deepCopy(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = deepCopy(e)
		}
		return out
	}
	return v
}

// inlineRefs returns v with every {"$ref": "#/$defs/NAME"} replaced by a
// copy of that definition (merged with the reference's sibling keywords).
func inlineRefs(v any, defs map[string]any, depth int) any {
	if depth > 32 {
		return v // a recursive schema would stop here; ours has none
	}
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		if ref, ok := x["$ref"].(string); ok {
			if name, ok := strings.CutPrefix(ref, "#/$defs/"); ok {
				if def, ok := defs[name].(map[string]any); ok {
					for k, e := range inlineRefs(def, defs, depth+1).(map[string]any) {
						out[k] = e
					}
					for k, e := range x {
						if k != "$ref" {
							out[k] = inlineRefs(e, defs, depth+1)
						}
					}
					return out
				}
			}
		}
		for k, e := range x {
			out[k] = inlineRefs(e, defs, depth+1)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = inlineRefs(e, defs, depth+1)
		}
		return out
	}
	return v
}

// fieldError is a problem at a place in a document, named by JSON pointer.
// With key set, it is reported at the mapping key rather than the value.
type fieldError struct {
	pointer string
	key     bool
	msg     string
}

// alsoCheckedMark is in the $comment of the parts of the schema that
// tasksync's own checks make too, with messages that say more (exactly
// one trigger, exactly one action, reserved event names, ...): the schema
// holds them so that an editor using it alone rejects what it can, and
// the loader reports the check's message instead of the schema's.
const alsoCheckedMark = "tasksync checks this too"

// validate checks v against the schema and returns one fieldError per
// failing leaf, phrased for a person; also holds those of the parts that
// tasksync's own checks make too (alsoCheckedMark), for the loader to
// report only if those checks let the document pass.
func (s *schemaValidator) validate(v any) (errs, also []fieldError) {
	cs := s.compiledSchema
	if m, ok := v.(map[string]any); ok {
		spec, _ := m["spec"].(map[string]any)
		key := variantKey{kindOf(str(m["kind"])), taskTypeOf(str(spec["type"]))}
		if key.kind == reconciler.KindWorkflow || key.kind == reconciler.KindTenantSettings {
			key.typ = ""
		}
		if variant, ok := s.variants[key]; ok {
			cs = variant
		}
	}
	return cs.validate(v)
}

func (s compiledSchema) validate(v any) (errs, also []fieldError) {
	err := s.compiled.Validate(v)
	if err == nil {
		return nil, nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return []fieldError{{msg: "schema validation failed: " + err.Error()}}, nil
	}
	s.collect(ve, v, &errs, &also)
	return compactErrors(errs), compactErrors(also)
}

// compactErrors drops exact repeats, which if/then branches can produce.
func compactErrors(out []fieldError) []fieldError {
	slices.SortStableFunc(out, func(a, b fieldError) int { return strings.Compare(a.pointer, b.pointer) })
	return slices.CompactFunc(out, func(a, b fieldError) bool { return a == b })
}

func (s compiledSchema) collect(ve *jsonschema.ValidationError, doc any, out, also *[]fieldError) {
	ve.InstanceLocation = normPointer(ve.InstanceLocation)
	kw := lastToken(ve.KeywordLocation)
	if node := s.alsoChecked(ve.AbsoluteKeywordLocation); node != nil {
		// Reported only where tasksync's checks find nothing (a corner
		// such as white space outside ASCII): the part's description
		// says what is wanted.
		if desc, _ := node["description"].(string); desc != "" {
			*also = append(*also, fieldError{pointer: ve.InstanceLocation, msg: fmt.Sprintf("%s: %s, got %s", field(ve.InstanceLocation), desc, describe(valueAt(doc, ve.InstanceLocation)))})
			return
		}
		out = also
	}
	if kw == "oneOf" || kw == "anyOf" {
		// The branches' own errors only confuse: say what the field takes.
		node := s.schemaAt(ve.AbsoluteKeywordLocation, true)
		desc, _ := node["description"].(string)
		if desc == "" {
			desc = "does not match any of the allowed forms"
		}
		*out = append(*out, fieldError{pointer: ve.InstanceLocation, msg: fmt.Sprintf("%s: %s, got %s", field(ve.InstanceLocation), desc, describe(valueAt(doc, ve.InstanceLocation)))})
		return
	}
	if len(ve.Causes) > 0 {
		for _, c := range ve.Causes {
			s.collect(c, doc, out, also)
		}
		return
	}
	*out = append(*out, s.leaf(ve, doc)...)
}

// leaf phrases one failing keyword.
func (s compiledSchema) leaf(ve *jsonschema.ValidationError, doc any) []fieldError {
	ptr := ve.InstanceLocation
	name := field(ptr)
	val := valueAt(doc, ptr)
	kw := lastToken(ve.KeywordLocation)
	sch := s.schemaAt(ve.AbsoluteKeywordLocation, true)
	hint := ""
	if d, ok := sch["description"].(string); ok {
		hint = " (" + strings.TrimSuffix(d, ".") + ")"
	}
	one := func(msg string, args ...any) []fieldError {
		return []fieldError{{pointer: ptr, msg: name + ": " + fmt.Sprintf(msg, args...)}}
	}
	switch kw {
	case "required":
		obj, _ := val.(map[string]any)
		var out []fieldError
		for _, r := range stringList(sch["required"]) {
			if _, ok := obj[r]; !ok {
				// Reported at the key of the object that lacks it.
				out = append(out, fieldError{pointer: ptr, key: ptr != "", msg: fmt.Sprintf("%s: missing required field %q", name, r)})
			}
		}
		return out
	case "additionalProperties":
		obj, _ := val.(map[string]any)
		allowed := sortedKeys(sch["properties"])
		var out []fieldError
		for _, k := range sortedKeys(obj) {
			if slices.Contains(allowed, k) {
				continue
			}
			msg := fmt.Sprintf("%s: unknown field %q", name, k)
			if guess := closest(k, allowed); guess != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", guess)
			}
			msg += "; allowed fields: " + strings.Join(allowed, ", ")
			out = append(out, fieldError{pointer: ptr + "/" + escapeToken(k), key: true, msg: msg})
		}
		return out
	case "type":
		return one("expected %s%s, got %s", strings.Join(stringList(sch["type"]), " or "), hint, describe(val))
	case "enum":
		var opts []string
		for _, e := range sch["enum"].([]any) {
			opts = append(opts, fmt.Sprint(e))
		}
		return one("must be one of %s; got %s", strings.Join(opts, ", "), describe(val))
	case "const":
		return one("must be %q, got %s", fmt.Sprint(sch["const"]), describe(val))
	case "pattern":
		if strings.HasSuffix(ve.KeywordLocation, "/propertyNames/pattern") {
			// The instance location is the key itself; for the empty key
			// the validator names the object.
			parent, key := ptr[:max(strings.LastIndexByte(ptr, '/'), 0)], lastTokenValue(ptr)
			if _, isObject := val.(map[string]any); isObject {
				parent, key = ptr, ""
			}
			rule := fmt.Sprintf("must match %s", sch["pattern"])
			if d, ok := sch["description"].(string); ok {
				rule = d
			}
			return []fieldError{{pointer: ptr, key: true, msg: fmt.Sprintf("%s: invalid key %q: %s", field(parent), key, rule)}}
		}
		if d, ok := sch["description"].(string); ok {
			return one("%s is not valid: %s", describe(val), d)
		}
		return one("%s is not valid: must match %s", describe(val), sch["pattern"])
	case "minimum", "maximum":
		lo, hasLo := sch["minimum"]
		hi, hasHi := sch["maximum"]
		switch {
		case hasLo && hasHi:
			return one("must be between %v and %v, got %v", lo, hi, val)
		case hasLo:
			return one("must be at least %v, got %v", lo, val)
		}
		return one("must be at most %v, got %v", hi, val)
	case "minLength":
		return one("must not be empty")
	case "maxLength":
		return one("is too long: at most %v characters, got %d", sch["maxLength"], len([]rune(fmt.Sprint(val))))
	case "minItems":
		return one("needs at least %v item(s)", sch["minItems"])
	case "maxItems":
		return one("has too many items: at most %v", sch["maxItems"])
	case "format":
		if sch["format"] == "date-time" {
			return one("%s is not an RFC 3339 timestamp with offset, such as 2026-12-01T09:00:00+01:00", describe(val))
		}
		return one("%s is not a valid %v", describe(val), sch["format"])
	}
	return one("%s", ve.Message)
}

// alsoChecked returns the part of the schema marked with alsoCheckedMark
// that holds the keyword at absLoc, or nil.
func (s compiledSchema) alsoChecked(absLoc string) map[string]any {
	_, ptr, _ := strings.Cut(absLoc, "#")
	for ptr != "" {
		ptr = ptr[:max(0, strings.LastIndexByte(ptr, '/'))]
		if m, ok := valueAt(s.raw, ptr).(map[string]any); ok {
			if c, _ := m["$comment"].(string); strings.Contains(c, alsoCheckedMark) {
				return m
			}
		}
	}
	return nil
}

// schemaAt resolves an absolute keyword location to the raw schema object
// holding that keyword (parent) or the keyword's own value.
func (s compiledSchema) schemaAt(absLoc string, parent bool) map[string]any {
	_, ptr, _ := strings.Cut(absLoc, "#")
	if parent {
		ptr = ptr[:max(0, strings.LastIndexByte(ptr, '/'))]
	}
	m, _ := valueAt(s.raw, ptr).(map[string]any)
	return m
}

// field renders a JSON pointer the way a person names a YAML field:
// "/spec/steps/0/id" becomes "spec.steps[0].id", and a key that is not a
// plain name is quoted: metadata.labels["a b"].
func field(pointer string) string {
	if pointer == "" {
		return "document"
	}
	var b strings.Builder
	for _, tok := range strings.Split(strings.TrimPrefix(pointer, "/"), "/") {
		tok = unescapeToken(tok)
		switch {
		case isIndex(tok):
			b.WriteString("[" + tok + "]")
		case plainKey.MatchString(tok):
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(tok)
		default:
			b.WriteString("[" + strconv.Quote(tok) + "]")
		}
	}
	return b.String()
}

var plainKey = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]*$`)

func isIndex(tok string) bool {
	_, err := strconv.Atoi(tok)
	return err == nil && !strings.HasPrefix(tok, "+") && !strings.HasPrefix(tok, "-")
}

// normPointer turns the validator's instance locations, whose tokens are
// also URL-escaped, into plain RFC 6901 pointers.
func normPointer(p string) string {
	if !strings.Contains(p, "%") {
		return p
	}
	toks := strings.Split(p, "/")
	for i, t := range toks {
		if u, err := url.PathUnescape(t); err == nil {
			toks[i] = u
		}
	}
	return strings.Join(toks, "/")
}

// lastTokenValue is the unescaped last token of a pointer.
func lastTokenValue(p string) string { return unescapeToken(lastToken(p)) }

// valueAt returns the value at a JSON pointer, or nil.
func valueAt(doc any, pointer string) any {
	if pointer == "" {
		return doc
	}
	cur := doc
	for _, tok := range strings.Split(strings.TrimPrefix(pointer, "/"), "/") {
		tok = unescapeToken(tok)
		switch c := cur.(type) {
		case map[string]any:
			cur = c[tok]
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(c) {
				return nil
			}
			cur = c[i]
		default:
			return nil
		}
	}
	return cur
}

// describe names a JSON value's type and, for scalars, the value itself.
func describe(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		if len(x) > 60 {
			x = x[:57] + "..."
		}
		return strconv.Quote(x)
	case bool:
		return "boolean " + strconv.FormatBool(x)
	case json.Number:
		return "number " + x.String()
	case []any, map[string]any:
		b, err := json.Marshal(x)
		if err != nil || len(b) > 60 {
			if _, ok := x.([]any); ok {
				return "a list"
			}
			return "a mapping"
		}
		return string(b)
	}
	return fmt.Sprintf("%v", v)
}

func lastToken(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[i+1:]
	}
	return p
}

// escapeToken escapes a JSON pointer token (RFC 6901).
func escapeToken(s string) string {
	if !strings.ContainsAny(s, "~/") {
		return s
	}
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// unescapeToken undoes escapeToken.
func unescapeToken(s string) string {
	if !strings.Contains(s, "~") {
		return s
	}
	return strings.ReplaceAll(strings.ReplaceAll(s, "~1", "/"), "~0", "~")
}

func stringList(v any) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case []any:
		out := make([]string, 0, len(x))
		for _, e := range x {
			out = append(out, fmt.Sprint(e))
		}
		return out
	}
	return nil
}

func sortedKeys(v any) []string {
	m, _ := v.(map[string]any)
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// closest returns the candidate within edit distance 2 of s, if one is.
func closest(s string, candidates []string) string {
	best, bestDist := "", 3
	for _, c := range candidates {
		if d := editDistance(s, c); d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
