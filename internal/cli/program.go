package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

// Command is one subcommand.
type Command struct {
	Name    string
	Args    string // synopsis of the positional arguments
	Summary string
	// Doc is the longer help, shown after the summary.
	Doc string
	// Env lists the environment variables the command reads besides
	// those of its flags (which its help shows next to each flag).
	Env []EnvDoc
	// Exits says what the command's exit statuses mean.
	Exits string
	// UsageExit is the status of a usage error; default ExitUsage.
	UsageExit int
	// Complete is what the completion scripts offer as the command's
	// arguments: "commands", "shells", "files" or nothing.
	Complete string
	// FlagValues are the values the completion scripts offer for the
	// command's flags that take one of a few, over the program's.
	FlagValues map[string][]string
	Flags      func(*FlagSet)
	// Run runs the command; a nil Run is the help command.
	Run func(ctx context.Context, in *Invocation) error
}

// EnvDoc is an environment variable a command reads besides its flags'
// own. A name ending in "<NAME>" stands for every variable with that
// prefix.
type EnvDoc struct {
	Name, Meaning string
}

// Invocation is what a command runs with.
type Invocation struct {
	Flags  *FlagSet
	Args   []string
	Getenv func(string) string
	Stdout io.Writer
	Stderr io.Writer
	// Hangups carries SIGHUP to the commands that take it; nil for the
	// others, which SIGHUP ends as it ends any process.
	Hangups <-chan os.Signal
}

// Program is a program's table of commands.
type Program struct {
	Name string
	// Intro is the usage's first paragraph.
	Intro    string
	Commands func() []Command
	// FlagValues are the values the completion scripts offer for the
	// flags that take one of a few; FlagKinds mark the flags whose value
	// is a "dir" or a "file".
	FlagValues map[string][]string
	FlagKinds  map[string]string
	// Undeclared, when set (by tests), is told of every environment
	// variable a command reads that its help does not name.
	Undeclared func(command, name string)
}

// Run finds the command args name and runs it; help, -h and --help show
// the help, --version runs the command version.
func (p *Program) Run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer, hangups <-chan os.Signal) error {
	if len(args) == 0 {
		p.WriteUsage(stderr)
		return Exit(ExitUsage)
	}
	name, rest := args[0], args[1:]
	switch name {
	case "help", "-h", "-help", "--help":
		return p.help(rest, stdout)
	case "--version", "-version":
		name = "version"
	}
	for _, c := range p.Commands() {
		if c.Name != name || c.Run == nil {
			continue
		}
		fs := p.FlagSet(c)
		err := fs.parse(rest, getenv)
		switch {
		case errors.Is(err, flag.ErrHelp):
			fs.Usage(stdout)
			return nil
		case err != nil:
			err = UsageError("%s: %v (see '%s %s -h')", c.Name, err, p.Name, c.Name)
		default:
			err = c.Run(ctx, &Invocation{Flags: fs, Args: fs.Set.Args(), Getenv: fs.guardEnv(getenv, p.Undeclared), Stdout: stdout, Stderr: stderr, Hangups: hangups})
		}
		var ee *ExitError
		if c.UsageExit != 0 && errors.As(err, &ee) && ee.Code == ExitUsage && ee.Err != nil {
			ee.Code = c.UsageExit
		}
		return err
	}
	return UsageError("unknown command %q (see '%s help')", name, p.Name)
}

// WriteUsage writes the program's usage: its intro and its commands.
func (p *Program) WriteUsage(w io.Writer) {
	fmt.Fprintf(w, "%s\nUsage:\n  %s <command> [flags] [arguments]\n\nCommands:\n", p.Intro, p.Name)
	for _, c := range p.Commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.Name, c.Summary)
	}
	fmt.Fprintf(w, `
Every flag can also be set by the environment variable shown in the
command's help. Run '%s <command> -h' for a command's flags.
`, p.Name)
}

func (p *Program) help(args []string, stdout io.Writer) error {
	if len(args) == 0 {
		p.WriteUsage(stdout)
		return nil
	}
	name := args[0]
	if name == "-h" || name == "-help" || name == "--help" {
		name = "help"
	}
	for _, c := range p.Commands() {
		if c.Name == name {
			p.FlagSet(c).Usage(stdout)
			return nil
		}
	}
	return UsageError("unknown command %q (see '%s help')", args[0], p.Name)
}
