// Package cli is the frame of a program made of subcommands: each
// command's flags, each backed by an environment variable; its help (the
// flags, the other variables it reads, its exit statuses); the dispatch
// of a command line to its command; the exit statuses; and the shell
// completion scripts, written from the same table of commands. It knows
// nothing of what the commands do.
package cli
