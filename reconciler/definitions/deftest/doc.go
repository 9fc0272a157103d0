// Package deftest holds the definitions of tests and benchmarks: a task's
// YAML (Task), files and trees written to disk (WriteFile, WriteTree),
// large generated trees (Generate, GenerateRare, BenchTree), and git
// checkouts laid out as git-sync leaves them (NewGitSync, Git).
package deftest
