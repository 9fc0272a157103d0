package cli

import (
	"flag"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"
)

// FlagSet is a command's flags, each backed by an environment variable.
type FlagSet struct {
	Cmd Command
	Set *flag.FlagSet
	// Envs maps a flag's name to its environment variable.
	Envs map[string]string
	// Opts are the command's options, which its flags fill.
	Opts any
	prog string
}

// FlagSet is c's flags, registered by c.Flags.
func (p *Program) FlagSet(c Command) *FlagSet {
	fs := &FlagSet{Cmd: c, Set: flag.NewFlagSet(c.Name, flag.ContinueOnError), Envs: map[string]string{}, prog: p.Name}
	fs.Set.SetOutput(io.Discard)
	if c.Flags != nil {
		c.Flags(fs)
	}
	return fs
}

// String registers a string flag backed by the variable env ("" for none).
func (f *FlagSet) String(p *string, name, env, def, usage string) {
	f.Set.StringVar(p, name, def, usage)
	f.Envs[name] = env
}

// Duration registers a duration flag backed by the variable env.
func (f *FlagSet) Duration(p *time.Duration, name, env string, def time.Duration, usage string) {
	f.Set.DurationVar(p, name, def, usage)
	f.Envs[name] = env
}

// Int registers an int flag backed by the variable env.
func (f *FlagSet) Int(p *int, name, env string, def int, usage string) {
	f.Set.IntVar(p, name, def, usage)
	f.Envs[name] = env
}

// Bool registers a bool flag backed by the variable env.
func (f *FlagSet) Bool(p *bool, name, env string, usage string) {
	f.Set.BoolVar(p, name, false, usage)
	f.Envs[name] = env
}

// parse reads args, then fills every flag not given on the command line
// from its environment variable.
func (f *FlagSet) parse(args []string, getenv func(string) string) error {
	if err := f.Set.Parse(args); err != nil {
		if m := badFlagValue.FindStringSubmatch(err.Error()); m != nil {
			if fl := f.Set.Lookup(m[2]); fl != nil {
				return fmt.Errorf("--%s %s: %s", fl.Name, m[1], valueProblem(fl))
			}
		}
		return err
	}
	given := map[string]bool{}
	f.Set.Visit(func(fl *flag.Flag) { given[fl.Name] = true })
	var err error
	f.Set.VisitAll(func(fl *flag.Flag) {
		env := f.Envs[fl.Name]
		if given[fl.Name] || env == "" || err != nil {
			return
		}
		if v := getenv(env); v != "" {
			if e := fl.Value.Set(v); e != nil {
				err = fmt.Errorf("%s=%q: %s", env, v, valueProblem(fl))
			}
		}
	})
	return err
}

// badFlagValue is the flag package's error for a value its type cannot
// read: the value (quoted) and the flag's name.
var badFlagValue = regexp.MustCompile(`^invalid value (".*") for flag -(\S+): (?:parse error|value out of range)$`)

// valueProblem says what is wrong with a value fl's type could not read,
// and what to write instead.
func valueProblem(fl *flag.Flag) string {
	g, _ := fl.Value.(flag.Getter)
	if g == nil {
		return "not a valid value"
	}
	switch g.Get().(type) {
	case bool:
		return "not a boolean; write true or false (or 1 or 0)"
	case time.Duration:
		return "not a duration; write e.g. 30s or 10m"
	case int:
		return "not a whole number; write e.g. 4"
	}
	return "not a valid value"
}

// Usage writes the command's help: synopsis, summary, longer help,
// flags, environment and exit statuses.
func (f *FlagSet) Usage(w io.Writer) {
	fmt.Fprintf(w, "Usage: %s %s [flags] %s\n\n%s.\n", f.prog, f.Cmd.Name, f.Cmd.Args, strings.ToUpper(f.Cmd.Summary[:1])+f.Cmd.Summary[1:])
	if doc := f.Cmd.Doc; doc != "" {
		fmt.Fprintf(w, "\n%s", doc)
	}
	defer f.writeEnvAndExits(w)
	n := 0
	f.Set.VisitAll(func(*flag.Flag) { n++ })
	if n == 0 {
		return
	}
	fmt.Fprintln(w, "\nFlags:")
	f.Set.VisitAll(func(fl *flag.Flag) {
		line := fmt.Sprintf("  --%s", fl.Name)
		name, usage := flag.UnquoteUsage(fl)
		if name != "" {
			line += " " + name
		}
		fmt.Fprintln(w, line)
		if fl.DefValue != "" && fl.DefValue != "false" {
			usage += fmt.Sprintf(" (default %q)", fl.DefValue)
		}
		if env := f.Envs[fl.Name]; env != "" {
			usage += fmt.Sprintf(" [$%s]", env)
		}
		fmt.Fprintf(w, "      %s\n", usage)
	})
}

// writeEnvAndExits writes the help's sections on the environment and the
// exit statuses.
func (f *FlagSet) writeEnvAndExits(w io.Writer) {
	if envs := f.Cmd.Env; len(envs) > 0 {
		fmt.Fprintln(w, "\nEnvironment (besides each flag's own, shown with the flag):")
		for _, e := range envs {
			fmt.Fprintf(w, "  $%s\n      %s\n", e.Name, e.Meaning)
		}
	}
	if ex := f.Cmd.Exits; ex != "" {
		fmt.Fprintf(w, "\nExit status:\n  %s\n", strings.ReplaceAll(ex, "\n", "\n  "))
	}
}

// DeclaresEnv reports whether the command's help names the variable
// name: one of its flags' or of its Env.
func (f *FlagSet) DeclaresEnv(name string) bool {
	for _, env := range f.Envs {
		if env == name {
			return true
		}
	}
	for _, e := range f.Cmd.Env {
		if prefix, ok := strings.CutSuffix(e.Name, "<NAME>"); ok && strings.HasPrefix(name, prefix) || e.Name == name {
			return true
		}
	}
	return false
}

// guardEnv returns getenv, reporting to report (when set) every variable
// it is asked for that the command's help does not name.
func (f *FlagSet) guardEnv(getenv func(string) string, report func(command, name string)) func(string) string {
	if report == nil {
		return getenv
	}
	return func(name string) string {
		if !f.DeclaresEnv(name) {
			report(f.Cmd.Name, name)
		}
		return getenv(name)
	}
}
