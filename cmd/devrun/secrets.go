package main

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/riveredge/tasksync/reconciler/definitions"
)

// placeholderSecrets writes, for each secret a tenant of tree names and
// secrets does not hold yet, a placeholder value in secrets/<tenant>/NAME:
// the layout tasksync reads, with each secret granted to its own tenant.
// SAMPLE_API_HOST is left out: devrun grants it, with the sample API's
// address, through the environment.
func placeholderSecrets(tree, secrets string) error {
	tenants, err := os.ReadDir(tree)
	if err != nil {
		return err
	}
	for _, t := range tenants {
		if !t.IsDir() || strings.HasPrefix(t.Name(), ".") || strings.HasPrefix(t.Name(), "_") {
			continue
		}
		err := filepath.WalkDir(filepath.Join(tree, t.Name()), func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !(strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml")) {
				return err
			}
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			for _, name := range definitions.SecretRefs(string(data)) {
				if name == sampleAPIHost {
					continue
				}
				file := filepath.Join(secrets, t.Name(), name)
				if _, err := os.Stat(file); err == nil {
					continue
				}
				if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
					return err
				}
				if err := os.WriteFile(file, []byte("dev-placeholder-"+strings.ToLower(name)+"\n"), 0o600); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("placeholder secrets: %w", err)
		}
	}
	return nil
}
