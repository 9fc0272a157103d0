// Package expr holds the CEL environments of definitions: which variables
// an expression may use where it is written, the {{ }} template syntax,
// and the evaluation of expressions and templates when a task runs. The
// definitions package compiles every expression with it at validation; the
// executor evaluates them with it at run time, so both agree.
package expr

import (
	"fmt"
	"strings"
	"sync"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types/ref"
)

// Scope is the set of variables an expression may use, which depends on
// where it is written.
type Scope int

const (
	// Trigger is an event trigger's `if`, which Inngest evaluates against
	// the incoming event.
	Trigger Scope = iota
	// Task is a template in a ScheduledTask's config.
	Task
	// Step is a workflow step's `if`, `sleep_until` or template.
	Step
	// Wait is a wait_for_event `if`, which Inngest evaluates with the
	// triggering event as `event` and the awaited one as `async`.
	Wait
	numScopes
)

// Vars names each scope's variables, for messages.
func (s Scope) Vars() string {
	return [numScopes]string{Trigger: "event", Task: "event, tenant", Step: "event, steps, tenant", Wait: "event, async"}[s]
}

// Envs are the CEL environments of every scope, with a cache of compiled
// programs. It is safe for concurrent use.
type Envs struct {
	envs [numScopes]*cel.Env

	mu       sync.Mutex
	programs map[progKey]cel.Program
}

type progKey struct {
	scope Scope
	expr  string
}

// maxPrograms bounds the program cache; a daemon sees edits forever.
const maxPrograms = 10_000

// NewEnvs builds the environments.
func NewEnvs() (*Envs, error) {
	event := cel.Variable("event", cel.MapType(cel.StringType, cel.DynType))
	tenant := cel.Variable("tenant", cel.StringType)
	steps := cel.Variable("steps", cel.MapType(cel.StringType, cel.DynType))
	async := cel.Variable("async", cel.MapType(cel.StringType, cel.DynType))
	opts := [numScopes][]cel.EnvOption{
		Trigger: {event},
		Task:    {event, tenant},
		Step:    {event, steps, tenant},
		Wait:    {event, async},
	}
	e := &Envs{programs: map[progKey]cel.Program{}}
	for s, o := range opts {
		env, err := cel.NewEnv(o...)
		if err != nil {
			return nil, fmt.Errorf("cel environment: %w", err)
		}
		e.envs[s] = env
	}
	return e, nil
}

// Env returns the environment of scope s.
func (e *Envs) Env(s Scope) *cel.Env { return e.envs[s] }

// Eval evaluates expr in scope s with vars and returns its value as plain
// Go (maps, lists, strings, numbers, booleans, time.Time, nil).
func (e *Envs) Eval(s Scope, expr string, vars map[string]any) (any, error) {
	key := progKey{s, expr}
	e.mu.Lock()
	prg, ok := e.programs[key]
	e.mu.Unlock()
	if !ok {
		ast, iss := e.envs[s].Compile(expr)
		if iss != nil && iss.Err() != nil {
			return nil, fmt.Errorf("expression %q: %w", expr, iss.Err())
		}
		p, err := e.envs[s].Program(ast)
		if err != nil {
			return nil, fmt.Errorf("expression %q: %w", expr, err)
		}
		prg = p
		e.mu.Lock()
		if len(e.programs) >= maxPrograms {
			clear(e.programs)
		}
		e.programs[key] = prg
		e.mu.Unlock()
	}
	out, _, err := prg.Eval(vars)
	if err != nil {
		return nil, fmt.Errorf("expression %q: %w", expr, err)
	}
	return native(out)
}

// native converts a CEL value to plain Go.
func native(v ref.Val) (any, error) {
	switch v.Type().TypeName() {
	case "null_type":
		return nil, nil
	case "google.protobuf.Timestamp", "google.protobuf.Duration":
		return v.Value(), nil
	}
	return v.ConvertToNative(anyType)
}

// Part is a piece of a template: literal text, or an expression.
type Part struct {
	Text string
	Expr string // set for an expression part
}

// ParseTemplate splits s at its {{ }} templates. A string without templates
// is one text part.
func ParseTemplate(s string) ([]Part, error) {
	var parts []Part
	for {
		i := strings.Index(s, "{{")
		if i < 0 {
			if strings.Contains(s, "}}") {
				return nil, fmt.Errorf("%q closes a template that was never opened; templates are written {{ expression }}", clip(s))
			}
			if s != "" {
				parts = append(parts, Part{Text: s})
			}
			return parts, nil
		}
		if strings.Contains(s[:i], "}}") {
			return nil, fmt.Errorf("%q closes a template that was never opened; templates are written {{ expression }}", clip(s))
		}
		end := strings.Index(s[i+2:], "}}")
		if end < 0 {
			return nil, fmt.Errorf("unterminated template %q; close it with }}", clip(s[i:]))
		}
		e := strings.TrimSpace(s[i+2 : i+2+end])
		if e == "" {
			return nil, fmt.Errorf("empty template {{ }}; write an expression such as {{ event.data.id }}")
		}
		if i > 0 {
			parts = append(parts, Part{Text: s[:i]})
		}
		parts = append(parts, Part{Expr: e})
		s = s[i+2+end+2:]
	}
}

// Render evaluates the templates of s. A string that is exactly one
// template yields the expression's value with its type (a number stays a
// number); otherwise values are formatted into the text.
func (e *Envs) Render(sc Scope, s string, vars map[string]any) (any, error) {
	return e.RenderLiteral(sc, s, vars, nil)
}

// RenderLiteral is Render with the literal text around the templates
// passed through literal (when not nil), and only that text: what an
// expression produced is never handed to it.
func (e *Envs) RenderLiteral(sc Scope, s string, vars map[string]any, literal func(string) (string, error)) (any, error) {
	parts, err := ParseTemplate(s)
	if err != nil {
		return nil, err
	}
	if len(parts) == 1 && parts[0].Expr != "" {
		return e.Eval(sc, parts[0].Expr, vars)
	}
	var b strings.Builder
	for _, p := range parts {
		if p.Expr == "" {
			text := p.Text
			if literal != nil {
				if text, err = literal(text); err != nil {
					return nil, err
				}
			}
			b.WriteString(text)
			continue
		}
		v, err := e.Eval(sc, p.Expr, vars)
		if err != nil {
			return nil, err
		}
		b.WriteString(Format(v))
	}
	return b.String(), nil
}

// MapStrings returns a copy of the JSON value v with every string in it,
// at any depth, replaced by what f makes of it. Maps and arrays keep their
// shape; other values are returned as they are.
func MapStrings(v any, f func(string) (any, error)) (any, error) {
	switch x := v.(type) {
	case string:
		return f(x)
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			r, err := MapStrings(e, f)
			if err != nil {
				return nil, err
			}
			out[k] = r
		}
		return out, nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			r, err := MapStrings(e, f)
			if err != nil {
				return nil, err
			}
			out[i] = r
		}
		return out, nil
	}
	return v, nil
}

// Format writes a value into text: strings as they are, null as nothing,
// anything else as JSON-like text.
func Format(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	}
	return fmt.Sprint(jsonText(v))
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:37] + "..."
	}
	return s
}
