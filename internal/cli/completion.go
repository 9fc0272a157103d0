package cli

import (
	"flag"
	"fmt"
	"io"
	"strings"
)

// Shells are the shells WriteCompletion writes for.
var Shells = []string{"bash", "zsh", "fish"}

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

// completionModel reads the commands and their flag sets: the scripts
// offer exactly what the commands accept.
func (p *Program) completionModel() []compCommand {
	var out []compCommand
	for _, c := range p.Commands() {
		cc := compCommand{name: c.Name, summary: c.Summary, args: c.Complete}
		p.FlagSet(c).Set.VisitAll(func(fl *flag.Flag) {
			_, usage := flag.UnquoteUsage(fl)
			f := compFlag{name: fl.Name, usage: usage, kind: p.FlagKinds[fl.Name], values: p.FlagValues[fl.Name]}
			if v, ok := c.FlagValues[fl.Name]; ok {
				f.values = v
			}
			if b, ok := fl.Value.(interface{ IsBoolFlag() bool }); !ok || !b.IsBoolFlag() {
				f.takesValue = true
			}
			cc.flags = append(cc.flags, f)
		})
		out = append(out, cc)
	}
	return out
}

// WriteCompletion writes the completion script of the program for shell,
// one of Shells.
func (p *Program) WriteCompletion(w io.Writer, shell string) error {
	model := p.completionModel()
	switch shell {
	case "bash":
		writeBashCompletion(w, p.Name, model)
	case "zsh":
		writeZshCompletion(w, p.Name, model)
	case "fish":
		writeFishCompletion(w, p.Name, model)
	default:
		return UsageError("completion takes one argument: %s", strings.Join(Shells, ", "))
	}
	return nil
}

// names are the names of model's commands, separated by spaces.
func names(model []compCommand) string {
	var n []string
	for _, c := range model {
		n = append(n, c.name)
	}
	return strings.Join(n, " ")
}

// ShellWord quotes s for bash, zsh and fish in single quotes.
func ShellWord(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// writeBashCompletion writes the bash script of prog's commands.
func writeBashCompletion(w io.Writer, prog string, model []compCommand) {
	t := func(s string) string { return strings.ReplaceAll(s, "{prog}", prog) }
	fmt.Fprintf(w, t(`# bash completion of {prog}, written by '{prog} completion bash'.
# Load it with: source <({prog} completion bash)
_{prog}() {
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
`), ShellWord(names(model)))
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
				fmt.Fprintf(w, "        --%s) COMPREPLY=($(compgen -W %s -- \"$cur\")); return 0 ;;\n", f.name, ShellWord(strings.Join(f.values, " ")))
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
		fmt.Fprintf(w, "        if [[ $cur == -* ]]; then\n            COMPREPLY=($(compgen -W %s -- \"$cur\"))\n", ShellWord(strings.Join(all, " ")))
		switch c.args {
		case "commands":
			fmt.Fprintf(w, "        else\n            COMPREPLY=($(compgen -W %s -- \"$cur\"))\n", ShellWord(names(model)))
		case "shells":
			fmt.Fprintf(w, "        else\n            COMPREPLY=($(compgen -W %s -- \"$cur\"))\n", ShellWord(strings.Join(Shells, " ")))
		case "files":
			fmt.Fprintf(w, "        else\n            COMPREPLY=($(compgen -f -- \"$cur\"))\n")
		}
		fmt.Fprintf(w, "        fi\n        ;;\n")
	}
	fmt.Fprint(w, t(`    esac
    return 0
}
complete -o filenames -F _{prog} {prog}
`))
}

// zshDesc escapes a description for a zsh _arguments or _describe spec.
func zshDesc(s string) string {
	s = strings.NewReplacer(`\`, `\\`, "[", `\[`, "]", `\]`, ":", `\:`).Replace(s)
	return s
}

// writeZshCompletion writes the zsh script of prog's commands.
func writeZshCompletion(w io.Writer, prog string, model []compCommand) {
	t := func(s string) string { return strings.ReplaceAll(s, "{prog}", prog) }
	fmt.Fprint(w, t(`#compdef {prog}
# zsh completion of {prog}, written by '{prog} completion zsh'.
# Put it in a directory of $fpath as _{prog}, or load it with:
# source <({prog} completion zsh)
_{prog}() {
    local -a commands
    commands=(
`))
	for _, c := range model {
		fmt.Fprintf(w, "        %s\n", ShellWord(c.name+":"+zshDesc(c.summary)))
	}
	fmt.Fprint(w, t(`    )
    if (( CURRENT == 2 )); then
        _describe -t commands '{prog} command' commands
        return
    fi
    local cmd=${words[2]}
    shift 1 words
    (( CURRENT-- ))
    case $cmd in
`))
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
			fmt.Fprintf(w, "            %s \\\n", ShellWord(spec))
		}
		switch c.args {
		case "commands":
			fmt.Fprintf(w, "            %s\n", ShellWord("1:command:("+names(model)+")"))
		case "shells":
			fmt.Fprintf(w, "            %s\n", ShellWord("1:shell:("+strings.Join(Shells, " ")+")"))
		case "files":
			fmt.Fprintf(w, "            %s\n", ShellWord("*:path:_files"))
		default:
			fmt.Fprint(w, "            && return\n")
		}
		fmt.Fprint(w, "        ;;\n")
	}
	fmt.Fprint(w, t(`    esac
}
if [[ $zsh_eval_context[-1] == loadautofunc ]]; then
    _{prog} "$@"
else
    compdef _{prog} {prog}
fi
`))
}

// writeFishCompletion writes the fish script of prog's commands.
func writeFishCompletion(w io.Writer, prog string, model []compCommand) {
	t := func(s string) string { return strings.ReplaceAll(s, "{prog}", prog) }
	fmt.Fprint(w, t(`# fish completion of {prog}, written by '{prog} completion fish'.
# Save it as ~/.config/fish/completions/{prog}.fish, or load it with:
# {prog} completion fish | source
complete -c {prog} -e
complete -c {prog} -f
`))
	all := names(model)
	for _, c := range model {
		fmt.Fprintf(w, t("complete -c {prog} -n %s -a %s -d %s\n"), ShellWord("not __fish_seen_subcommand_from "+all), c.name, ShellWord(c.summary))
	}
	for _, c := range model {
		cond := ShellWord("__fish_seen_subcommand_from " + c.name)
		for _, f := range c.flags {
			line := fmt.Sprintf(t("complete -c {prog} -n %s -l %s"), cond, f.name)
			if f.takesValue {
				line += " -r"
				switch {
				case len(f.values) > 0:
					line += " -a " + ShellWord(strings.Join(f.values, " "))
				case f.kind == "dir":
					line += " -a '(__fish_complete_directories)'"
				case f.kind == "file":
					line += " -F"
				}
			}
			fmt.Fprintf(w, "%s -d %s\n", line, ShellWord(f.usage))
		}
		switch c.args {
		case "commands":
			fmt.Fprintf(w, t("complete -c {prog} -n %s -a %s\n"), cond, ShellWord(all))
		case "shells":
			fmt.Fprintf(w, t("complete -c {prog} -n %s -a %s\n"), cond, ShellWord(strings.Join(Shells, " ")))
		case "files":
			fmt.Fprintf(w, t("complete -c {prog} -n %s -F\n"), cond)
		}
	}
}
