package main

import (
	"context"
	"os"
)

func main() {
	os.Exit(program().ExitCode(run(context.Background(), os.Args[1:], os.Getenv, os.Stdout, os.Stderr), os.Stderr))
}
