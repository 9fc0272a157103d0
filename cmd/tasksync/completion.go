package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
)

// completionShells are the shells `tasksync completion` writes for.
var completionShells = []string{"bash", "zsh", "fish"}

// compFlag is one flag as the completion scripts offer it.
type compFlag struct {
	name, usage string
	takesValue  bool
	values      []string // the values it takes, when they are few
	kind        string   // "dir" or "file" when it names one, else ""
}

// compCommand is one command as the completion scripts offer it.
type compCommand struct {
	name, summary string
	flags         []compFlag
	args          string // "commands", "shells", "files" or ""
}

// flagValues are the values of the flags that take one of a few.
var flagValues = map[string][]string{
	"log-format":     {"text", "json"},
	"max-retire":     {"half", "all"},
	"sandbox-cgroup": {"auto", "none"},
}

// flagKinds are the flags whose value is a directory or a file.
var flagKinds = map[string]string{
	"dir":                "dir",
	"secrets-dir":        "dir",
	"status-tokens-file": "file",
	"python":             "file",
}

// completionModel reads the commands and their flag sets: the scripts
// offer exactly what the commands accept.
func completionModel() []compCommand {
	var out []compCommand
	for _, c := range commands() {
		cc := compCommand{name: c.name, summary: c.summary}
		switch c.name {
		case "help":
			cc.args = "commands"
		case "completion":
			cc.args = "shells"
		case "validate":
			cc.args = "files"
		}
		fs := newFlagSet(c, io.Discard)
		if c.flags != nil {
			c.flags(fs)
		}
		fs.set.VisitAll(func(fl *flag.Flag) {
			_, usage := flag.UnquoteUsage(fl)
			f := compFlag{name: fl.Name, usage: usage, kind: flagKinds[fl.Name], values: flagValues[fl.Name]}
			if b, ok := fl.Value.(interface{ IsBoolFlag() bool }); !ok || !b.IsBoolFlag() {
				f.takesValue = true
			}
			if fl.Name == "format" {
				f.values = formatsOf(c.name)
			}
			cc.flags = append(cc.flags, f)
		})
		out = append(out, cc)
	}
	return out
}

// formatsOf is what --format of the command accepts.
func formatsOf(cmd string) []string {
	if cmd == "validate" {
		return validateFormats
	}
	return []string{formatText, formatJSON}
}

func runCompletion(_ context.Context, c *invocation) error {
	if len(c.args) != 1 || !slices.Contains(completionShells, c.args[0]) {
		return usageError("completion takes one argument: %s", strings.Join(completionShells, ", "))
	}
	model := completionModel()
	switch c.args[0] {
	case "bash":
		writeBashCompletion(c.stdout, model)
	case "zsh":
		writeZshCompletion(c.stdout, model)
	case "fish":
		writeFishCompletion(c.stdout, model)
	}
	return nil
}

func names(model []compCommand) string {
	var n []string
	for _, c := range model {
		n = append(n, c.name)
	}
	return strings.Join(n, " ")
}

// shellWord quotes s for bash, zsh and fish in single quotes.
func shellWord(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func writeBashCompletion(w io.Writer, model []compCommand) {
	fmt.Fprintf(w, `# bash completion of tasksync, written by 'tasksync completion bash'.
# Load it with: source <(tasksync completion bash)
_tasksync() {
    local cur prev cmd i
    COMPREPLY=()
    cur="${COMP_WORDS[COMP_CWORD]}"
    prev=""
    ((COMP_CWORD > 0)) && prev="${COMP_WORDS[COMP_CWORD-1]}"
    cmd=""
    for ((i = 1; i < COMP_CWORD; i++)); do
        case "${COMP_WORDS[i]}" in
        -*) ;;
        *) cmd="${COMP_WORDS[i]}"; break ;;
        esac
    done
    if [[ -z $cmd ]]; then
        COMPREPLY=($(compgen -W %s -- "$cur"))
        return 0
    fi
    case "$cmd" in
`, shellWord(names(model)))
	for _, c := range model {
		fmt.Fprintf(w, "    %s)\n", c.name)
		var valued, all []string
		fmt.Fprintf(w, "        case \"$prev\" in\n")
		for _, f := range c.flags {
			all = append(all, "--"+f.name)
			if !f.takesValue {
				continue
			}
			switch {
			case len(f.values) > 0:
				fmt.Fprintf(w, "        --%s) COMPREPLY=($(compgen -W %s -- \"$cur\")); return 0 ;;\n", f.name, shellWord(strings.Join(f.values, " ")))
			case f.kind == "dir":
				fmt.Fprintf(w, "        --%s) COMPREPLY=($(compgen -d -- \"$cur\")); return 0 ;;\n", f.name)
			case f.kind == "file":
				fmt.Fprintf(w, "        --%s) COMPREPLY=($(compgen -f -- \"$cur\")); return 0 ;;\n", f.name)
			default:
				valued = append(valued, "--"+f.name)
			}
		}
		if len(valued) > 0 {
			fmt.Fprintf(w, "        %s) return 0 ;;\n", strings.Join(valued, "|"))
		}
		fmt.Fprintf(w, "        esac\n")
		fmt.Fprintf(w, "        if [[ $cur == -* ]]; then\n            COMPREPLY=($(compgen -W %s -- \"$cur\"))\n", shellWord(strings.Join(all, " ")))
		switch c.args {
		case "commands":
			fmt.Fprintf(w, "        else\n            COMPREPLY=($(compgen -W %s -- \"$cur\"))\n", shellWord(names(model)))
		case "shells":
			fmt.Fprintf(w, "        else\n            COMPREPLY=($(compgen -W %s -- \"$cur\"))\n", shellWord(strings.Join(completionShells, " ")))
		case "files":
			fmt.Fprintf(w, "        else\n            COMPREPLY=($(compgen -f -- \"$cur\"))\n")
		}
		fmt.Fprintf(w, "        fi\n        ;;\n")
	}
	fmt.Fprint(w, `    esac
    return 0
}
complete -o filenames -F _tasksync tasksync
`)
}

// zshDesc escapes a description for a zsh _arguments or _describe spec.
func zshDesc(s string) string {
	s = strings.NewReplacer(`\`, `\\`, "[", `\[`, "]", `\]`, ":", `\:`).Replace(s)
	return s
}

func writeZshCompletion(w io.Writer, model []compCommand) {
	fmt.Fprint(w, `#compdef tasksync
# zsh completion of tasksync, written by 'tasksync completion zsh'.
# Put it in a directory of $fpath as _tasksync, or load it with:
# source <(tasksync completion zsh)
_tasksync() {
    local -a commands
    commands=(
`)
	for _, c := range model {
		fmt.Fprintf(w, "        %s\n", shellWord(c.name+":"+zshDesc(c.summary)))
	}
	fmt.Fprint(w, `    )
    if (( CURRENT == 2 )); then
        _describe -t commands 'tasksync command' commands
        return
    fi
    local cmd=${words[2]}
    shift 1 words
    (( CURRENT-- ))
    case $cmd in
`)
	for _, c := range model {
		fmt.Fprintf(w, "    %s)\n        _arguments -s \\\n", c.name)
		for _, f := range c.flags {
			spec := "--" + f.name
			if f.takesValue {
				spec += "=[" + zshDesc(f.usage) + "]:" + f.name + ":"
				switch {
				case len(f.values) > 0:
					spec += "(" + strings.Join(f.values, " ") + ")"
				case f.kind == "dir":
					spec += "_files -/"
				case f.kind == "file":
					spec += "_files"
				default:
					spec += " "
				}
			} else {
				spec += "[" + zshDesc(f.usage) + "]"
			}
			fmt.Fprintf(w, "            %s \\\n", shellWord(spec))
		}
		switch c.args {
		case "commands":
			fmt.Fprintf(w, "            %s\n", shellWord("1:command:("+names(model)+")"))
		case "shells":
			fmt.Fprintf(w, "            %s\n", shellWord("1:shell:("+strings.Join(completionShells, " ")+")"))
		case "files":
			fmt.Fprintf(w, "            %s\n", shellWord("*:path:_files"))
		default:
			fmt.Fprint(w, "            && return\n")
		}
		fmt.Fprint(w, "        ;;\n")
	}
	fmt.Fprint(w, `    esac
}
if [[ $zsh_eval_context[-1] == loadautofunc ]]; then
    _tasksync "$@"
else
    compdef _tasksync tasksync
fi
`)
}

func writeFishCompletion(w io.Writer, model []compCommand) {
	fmt.Fprint(w, `# fish completion of tasksync, written by 'tasksync completion fish'.
# Save it as ~/.config/fish/completions/tasksync.fish, or load it with:
# tasksync completion fish | source
complete -c tasksync -e
complete -c tasksync -f
`)
	all := names(model)
	for _, c := range model {
		fmt.Fprintf(w, "complete -c tasksync -n %s -a %s -d %s\n", shellWord("not __fish_seen_subcommand_from "+all), c.name, shellWord(c.summary))
	}
	for _, c := range model {
		cond := shellWord("__fish_seen_subcommand_from " + c.name)
		for _, f := range c.flags {
			line := fmt.Sprintf("complete -c tasksync -n %s -l %s", cond, f.name)
			if f.takesValue {
				line += " -r"
				switch {
				case len(f.values) > 0:
					line += " -a " + shellWord(strings.Join(f.values, " "))
				case f.kind == "dir":
					line += " -a '(__fish_complete_directories)'"
				case f.kind == "file":
					line += " -F"
				}
			}
			fmt.Fprintf(w, "%s -d %s\n", line, shellWord(f.usage))
		}
		switch c.args {
		case "commands":
			fmt.Fprintf(w, "complete -c tasksync -n %s -a %s\n", cond, shellWord(all))
		case "shells":
			fmt.Fprintf(w, "complete -c tasksync -n %s -a %s\n", cond, shellWord(strings.Join(completionShells, " ")))
		case "files":
			fmt.Fprintf(w, "complete -c tasksync -n %s -F\n", cond)
		}
	}
}
