package expr

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/interpreter"
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

// Eval evaluates expr in scope s with vars under ctx and returns its
// value as plain Go (maps, lists, strings, numbers, booleans, time.Time,
// nil). Evaluation stops with ErrCostLimit past MaxCost, with ctx's error
// as soon as ctx is done, and with ErrTooLarge when the value is larger
// than MaxRenderedBytes.
func (e *Envs) Eval(ctx context.Context, s Scope, expr string, vars map[string]any) (any, error) {
	v, _, err := e.eval(ctx, s, expr, vars, MaxRenderedBytes)
	if err != nil {
		return nil, err
	}
	return nativeOf(expr, v)
}

// eval evaluates expr and returns its value and the size of the value as
// JSON text, or ErrTooLarge when that is above room. The size is measured
// on CEL's value, before a copy or a text of it is made.
func (e *Envs) eval(ctx context.Context, s Scope, expr string, vars map[string]any, room int) (ref.Val, int, error) {
	prg, err := e.program(s, expr)
	if err != nil {
		return nil, 0, err
	}
	out, _, err := prg.ContextEval(ctx, vars)
	if err != nil {
		var cancelled interpreter.EvalCancelledError
		switch {
		case ctx.Err() != nil:
			cause := context.Cause(ctx)
			return nil, 0, &Error{Expr: expr, Msg: "evaluation interrupted: " + cause.Error(), cause: cause, interrupted: true}
		case errors.As(err, &cancelled) && cancelled.Cause == interpreter.CostLimitExceeded:
			return nil, 0, &Error{Expr: expr, cause: ErrCostLimit, Msg: fmt.Sprintf("%v of %d; it does too much work for this data (nested all/exists/map/filter over long lists?): test fewer elements or split the work into steps", ErrCostLimit, MaxCost)}
		}
		// CEL's own error value stays here: only its text goes on.
		return nil, 0, &Error{Expr: expr, Msg: err.Error()}
	}
	n := measure(out, room)
	if n > room {
		return nil, 0, &Error{Expr: clip(expr), cause: ErrTooLarge, Msg: fmt.Sprintf("%v: its value would take the rendered text or value over the %d bytes allowed", ErrTooLarge, MaxRenderedBytes)}
	}
	return out, n, nil
}

// program returns the compiled program of expr in scope s.
func (e *Envs) program(s Scope, expr string) (cel.Program, error) {
	key := progKey{s, expr}
	e.mu.Lock()
	prg, ok := e.programs[key]
	e.mu.Unlock()
	if ok {
		return prg, nil
	}
	ast, iss := e.envs[s].Compile(expr)
	if iss != nil && iss.Err() != nil {
		return nil, &Error{Expr: expr, Msg: iss.Err().Error()}
	}
	prg, err := e.envs[s].Program(ast, programOptions()...)
	if err != nil {
		return nil, &Error{Expr: expr, Msg: err.Error()}
	}
	e.mu.Lock()
	if len(e.programs) >= maxPrograms {
		clear(e.programs)
	}
	e.programs[key] = prg
	e.mu.Unlock()
	return prg, nil
}

// nativeOf is native with its error as an *Error naming expr.
func nativeOf(expr string, v ref.Val) (any, error) {
	out, err := native(v)
	if err != nil {
		return nil, &Error{Expr: expr, Msg: err.Error()}
	}
	return out, nil
}

// native converts a CEL value to plain Go.
func native(v ref.Val) (any, error) {
	switch v.Type().TypeName() {
	case "null_type":
		return nil, nil
	case "google.protobuf.Timestamp", "google.protobuf.Duration":
		return v.Value(), nil
	}
	out, err := v.ConvertToNative(anyType)
	if err != nil {
		return nil, err
	}
	return jsonKeys(out), nil
}

// jsonKeys returns v with every map in it keyed by strings: CEL gives a
// map as map[any]any (its keys may be ints or bools), which JSON cannot
// encode; a value goes into request bodies and events as JSON. A key
// that is not a string is written as Format writes it. Maps and lists
// are copied: CEL may hand back the event's own.
func jsonKeys(v any) any {
	switch x := v.(type) {
	case map[any]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[Format(k)] = jsonKeys(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = jsonKeys(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = jsonKeys(e)
		}
		return out
	}
	return v
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

// Render evaluates the templates of s under ctx. A string that is exactly
// one template yields the expression's value with its type (a number
// stays a number); otherwise values are formatted into the text. The
// result may not be larger than MaxRenderedBytes (ErrTooLarge), which is
// checked as it is built; each expression evaluates as with Eval.
func (e *Envs) Render(ctx context.Context, sc Scope, s string, vars map[string]any) (any, error) {
	return e.RenderLiteral(ctx, sc, s, vars, nil)
}

// RenderLiteral is Render with the literal text around the templates
// passed through literal (when not nil), and only that text: what an
// expression produced is never handed to it.
func (e *Envs) RenderLiteral(ctx context.Context, sc Scope, s string, vars map[string]any, literal func(string) (string, error)) (any, error) {
	budget := MaxRenderedBytes
	return e.render(ctx, sc, s, vars, literal, &budget)
}

// RenderValue renders every string of the JSON value v, at any depth, as
// RenderLiteral does, and returns a copy of v with the results: maps and
// arrays keep their shape. The whole result may not be larger than
// MaxRenderedBytes.
func (e *Envs) RenderValue(ctx context.Context, sc Scope, v any, vars map[string]any, literal func(string) (string, error)) (any, error) {
	budget := MaxRenderedBytes
	return MapStrings(v, func(s string) (any, error) { return e.render(ctx, sc, s, vars, literal, &budget) })
}

// render renders s, charging what it produces to budget.
func (e *Envs) render(ctx context.Context, sc Scope, s string, vars map[string]any, literal func(string) (string, error), budget *int) (any, error) {
	parts, err := ParseTemplate(s)
	if err != nil {
		return nil, &Error{Msg: err.Error()}
	}
	if len(parts) == 1 && parts[0].Expr != "" {
		v, n, err := e.eval(ctx, sc, parts[0].Expr, vars, *budget)
		if err != nil {
			return nil, err
		}
		*budget -= n
		return nativeOf(parts[0].Expr, v)
	}
	var b strings.Builder
	write := func(text string) error {
		if *budget -= len(text); *budget < 0 {
			return &Error{cause: ErrTooLarge, Msg: fmt.Sprintf("%v: the rendered text is larger than the %d bytes allowed", ErrTooLarge, MaxRenderedBytes)}
		}
		b.WriteString(text)
		return nil
	}
	for _, p := range parts {
		if p.Expr == "" {
			text := p.Text
			if literal != nil {
				if text, err = literal(text); err != nil {
					return nil, err
				}
			}
			if err := write(text); err != nil {
				return nil, err
			}
			continue
		}
		// The value's size is checked before it is formatted, so a huge
		// value is refused before its text is built; the text is then
		// charged as written (escapes can make it larger).
		v, _, err := e.eval(ctx, sc, p.Expr, vars, *budget)
		if err != nil {
			return nil, err
		}
		nv, err := nativeOf(p.Expr, v)
		if err != nil {
			return nil, err
		}
		if err := write(Format(nv)); err != nil {
			return nil, &Error{Expr: clip(p.Expr), cause: ErrTooLarge, Msg: err.Error()}
		}
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
