package schema_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/riveredge/tasksync/reconciler/definitions"
	"github.com/riveredge/tasksync/schema"
)

// ajvBin is ajv-cli, installed by make (the ajv target) into the
// repository's ignored .cache directory; TASKSYNC_AJV names another.
func ajvBin(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("TASKSYNC_AJV"); p != "" {
		return p
	}
	p, err := filepath.Abs("../.cache/ajv/node_modules/.bin/ajv")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("ajv-cli is not installed: run make ajv (npm installs ajv-cli@5 and ajv-formats@3 into .cache/ajv), or set TASKSYNC_AJV: %v", err)
	}
	return p
}

// notExpressible are the golden bad cases the JSON Schema cannot reject
// on its own, with the reason: each needs tasksync's own checks. Every
// other bad case must be rejected by the schema alone.
var notExpressible = map[string]string{}

func init() {
	for reason, cases := range map[string][]string{
		"YAML itself, which the parser checks before any schema (editors report it as a YAML error)": {
			"bad-anchor-across-documents",
			"bad-duplicate-key",
			"bad-unsupported-tag",
			"bad-unsupported-tag-mapping",
			"bad-yaml-indent",
			"bad-yaml-second-document",
			"bad-yaml-syntax",
			"bad-yaml-tab",
		},
		"nesting depth of a free-form value: JSON Schema has no depth bound": {
			"bad-deep-nesting",
		},
		"the command's arguments, not a document": {
			"bad-args-missing-path",
		},
		"a cron field's values (hour 25): the cron parser's": {
			"bad-args-single-file",
		},
		"the tree: file places, tenant directories, symlinks, files a definition names": {
			"bad-file-at-root",
			"bad-tenant-dir-name",
			"bad-tenant-mismatch",
			"bad-symlink-dangling",
			"bad-symlink-other-tenant",
			"bad-symlink-outside",
			"bad-symlink-outside-dir",
			"bad-symlink-tenant-outside",
			"bad-stray-file-no-dir",
			"bad-stray-file-with-dir",
			"bad-python-file-missing",
			"bad-python-file-symlink-other-tenant",
		},
		"a path that leaves the tenant directory only once cleaned (scripts/../../x): a pattern cannot count segments": {
			"bad-python-file-escape-inner",
		},
		"codes unique across documents and files: a schema sees one document": {
			"bad-duplicate-code-files-args",
			"bad-duplicate-code-files-outside",
			"bad-duplicate-code-files",
			"bad-duplicate-code-same-file",
		},
		"step ids unique within a list: uniqueItems compares whole items": {
			"bad-wf-duplicate-step-id",
		},
		"CEL expressions and templates: type-checked and cost-bounded by the CEL compiler": {
			"bad-cel-not-bool",
			"bad-cel-regex-from-data",
			"bad-cel-regex-or-36",
			"bad-cel-regex-step-if",
			"bad-cel-regex-template",
			"bad-cel-regex-trigger-if",
			"bad-cel-step-if-cost",
			"bad-cel-step-if-nested-all",
			"bad-cel-template-map-cost",
			"bad-cel-template-nested-map",
			"bad-cel-trigger-if",
			"bad-cel-trigger-if-contains-pass",
			"bad-cel-trigger-if-nested-all",
			"bad-cel-trigger-if-two-levels",
			"bad-cel-unknown-variable",
			"bad-cel-wait-if-cost",
			"bad-wf-later-step-ref",
			"bad-wf-unknown-step-ref",
			"bad-wf-template-unknown-step",
			"bad-wf-unterminated-template",
			"bad-wf-sleep-until-not-time",
			"bad-wf-step-if-cel",
			"bad-wf-wait-if-steps",
			"bad-wf-step-dot-hyphen",
		},
		"a duration's value (at least 1m, whole minutes, at most 5m or 15m): Go durations mix units, a pattern cannot compare them": {
			"bad-catchup-window",
			"bad-interval-not-minutes",
			"bad-interval-too-short",
			"bad-jitter-too-long",
			"bad-timeout-api-max",
			"bad-timeout-python-max",
		},
		"secret references in any string of a free-form value (body), and grants: a recursive schema, which tasksync's compile does not take, and the operator's secrets": {
			"bad-secret-in-body",
			"bad-secret-other-tenant",
			"bad-secret-refs",
		},
		"the time zone database": {
			"bad-unknown-timezone",
		},
		"the clock: a one-shot whose time has passed, a warning that fails under --strict": {
			"warn-at-past-strict",
		},
	} {
		for _, c := range cases {
			notExpressible[c] = reason
		}
	}
}

// document is one YAML document of a case, as JSON.
type document struct {
	file string // path relative to the case's tree, with #N for the Nth document
	json []byte
}

// yamlDocuments reads every document of every definition file under
// root. A file that is not YAML at all yields no document (that is the
// parser's to reject, not the schema's); ok reports whether every file
// parsed.
func yamlDocuments(t *testing.T, root string) (docs []document, ok bool) {
	t.Helper()
	ok = true
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return nil // a dangling symlink: not a document
		}
		name := d.Name()
		if d.IsDir() || !(strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".yml")) || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			rel = ""
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		for i := 0; ; i++ {
			var n yaml.Node
			if err := dec.Decode(&n); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				ok = false
				break
			}
			v, err := toJSON(&n, 0)
			if err != nil {
				ok = false
				continue
			}
			if v == nil {
				continue // an empty document
			}
			j, err := json.Marshal(v)
			if err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			docs = append(docs, document{file: fmt.Sprintf("%s#%d", rel, i), json: j})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return docs, ok
}

// toJSON converts a YAML node as an editor's YAML language server does:
// aliases followed, merge keys merged, scalars typed by their resolved
// tag (a timestamp stays a string).
func toJSON(n *yaml.Node, depth int) (any, error) {
	if depth > 100 {
		return nil, errors.New("nested too deep")
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, nil
		}
		return toJSON(n.Content[0], depth+1)
	case yaml.AliasNode:
		return toJSON(n.Alias, depth+1)
	case yaml.SequenceNode:
		out := []any{}
		for _, c := range n.Content {
			v, err := toJSON(c, depth+1)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	case yaml.MappingNode:
		out := map[string]any{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			if k.Tag == "!!merge" {
				merged, err := toJSON(val, depth+1)
				if err != nil {
					return nil, err
				}
				maps, _ := merged.([]any)
				if m, ok := merged.(map[string]any); ok {
					maps = []any{m}
				}
				for _, m := range maps {
					mm, _ := m.(map[string]any)
					for mk, mv := range mm {
						if _, set := out[mk]; !set {
							out[mk] = mv
						}
					}
				}
				continue
			}
			v, err := toJSON(val, depth+1)
			if err != nil {
				return nil, err
			}
			out[k.Value] = v
		}
		return out, nil
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return nil, nil
		case "!!bool":
			var b bool
			return b, n.Decode(&b)
		case "!!int":
			if i, err := strconv.ParseInt(n.Value, 0, 64); err == nil {
				return i, nil
			}
			var f float64
			return f, n.Decode(&f)
		case "!!float":
			var f float64
			return f, n.Decode(&f)
		}
		return n.Value, nil
	}
	return nil, fmt.Errorf("unknown node kind %v", n.Kind)
}

// ajvValidate validates each document with ajv against the published
// schema and returns the files it rejects.
func ajvValidate(t *testing.T, docs map[string]document) map[string]bool {
	t.Helper()
	dir := t.TempDir()
	var args []string
	byTemp := map[string]string{}
	i := 0
	for key, d := range docs {
		p := filepath.Join(dir, fmt.Sprintf("d%04d.json", i))
		i++
		if err := os.WriteFile(p, d.json, 0o644); err != nil {
			t.Fatal(err)
		}
		byTemp[p] = key
		args = append(args, "-d", p)
	}
	schemaPath, err := filepath.Abs("tasksync.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, ajvBin(t), append([]string{"validate", "--spec=draft2020", "--strict=false", "--all-errors", "-c", "ajv-formats", "-s", schemaPath}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	runErr := cmd.Run()
	rejected := map[string]bool{}
	seen := 0
	for _, line := range strings.Split(out.String(), "\n") {
		for p, key := range byTemp {
			switch line {
			case p + " valid":
				seen++
			case p + " invalid":
				rejected[key] = true
				seen++
			}
		}
	}
	if seen != len(docs) {
		t.Fatalf("ajv said valid or invalid of %d of %d documents (%v):\n%s", seen, len(docs), runErr, out.String())
	}
	return rejected
}

// TestSchemaCompilesWithAjv: the published schema is valid draft 2020-12
// for an independent validator, strict mode on.
func TestSchemaCompilesWithAjv(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, ajvBin(t), "compile", "--spec=draft2020", "--strict=true", "--strict-required=false", "-c", "ajv-formats", "-s", "tasksync.schema.json").CombinedOutput()
	if err != nil {
		t.Fatalf("ajv compile: %v\n%s", err, out)
	}
}

// TestSchemaAloneWithAjv feeds the golden cases of tasksync validate to
// ajv with nothing but the published schema, as an editor would: every
// bad case the schema can express is rejected, every good case, example
// and file of the sample tree accepted.
func TestSchemaAloneWithAjv(t *testing.T) {
	cases, err := filepath.Glob("../cmd/tasksync/testdata/validate/*/tree")
	if err != nil || len(cases) == 0 {
		t.Fatalf("no golden cases: %v", err)
	}
	all := map[string]document{}
	caseDocs := map[string][]string{}
	var bad, good []string
	for _, tree := range cases {
		name := filepath.Base(filepath.Dir(tree))
		docs, _ := yamlDocuments(t, tree)
		for _, d := range docs {
			key := name + "/" + d.file
			all[key] = d
			caseDocs[name] = append(caseDocs[name], key)
		}
		// A case is bad when tasksync validate fails on it (want.txt
		// starts with its exit status).
		want, err := os.ReadFile(filepath.Join(filepath.Dir(tree), "want.txt"))
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(string(want), "exit 0\n") {
			good = append(good, name)
		} else {
			bad = append(bad, name)
		}
	}
	for _, file := range definitionFiles(t) {
		docs, ok := yamlDocuments(t, file)
		if !ok || len(docs) == 0 {
			t.Fatalf("%s: no documents, or not YAML", file)
		}
		for _, d := range docs {
			key := file + d.file
			all[key] = d
			caseDocs[file] = append(caseDocs[file], key)
		}
		good = append(good, file)
	}
	rejected := ajvValidate(t, all)

	var accepted []string
	for _, name := range bad {
		hit := slices.ContainsFunc(caseDocs[name], func(k string) bool { return rejected[k] })
		reason, listed := notExpressible[name]
		switch {
		case hit && listed:
			t.Errorf("%s is listed as not expressible (%s), yet the schema rejects it: take it off the list", name, reason)
		case !hit && !listed:
			accepted = append(accepted, name)
		}
	}
	if len(accepted) > 0 {
		t.Errorf("the schema alone accepts these bad cases: make it reject them, or list them in notExpressible with the reason:\n  %s", strings.Join(accepted, "\n  "))
	}
	for name := range notExpressible {
		if !slices.Contains(bad, name) {
			t.Errorf("notExpressible names %s, which is not a bad case", name)
		}
	}
	for _, name := range good {
		for _, k := range caseDocs[name] {
			if rejected[k] {
				t.Errorf("the schema rejects %s, which tasksync accepts", k)
			}
		}
	}
}

// definitionFiles are the example definitions (the files at the top of
// examples/; its sub-directories hold deployment, monitoring and CI files)
// and every definition file of the sample tree.
func definitionFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("../examples/*.y*ml")
	if err != nil || len(files) < 5 {
		t.Fatalf("the example definitions: %q, %v", files, err)
	}
	err = filepath.WalkDir("../tasks.d", func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && (strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml")) {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// TestDefinitionFilesNameTheSchema: every example and sample definition
// starts with the YAML language server's line, whose relative path leads
// to this schema; the schema's $id is the one the package exports and the
// docs name.
func TestDefinitionFilesNameTheSchema(t *testing.T) {
	const prefix = "# yaml-language-server: $schema="
	self, err := filepath.Abs("tasksync.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range definitionFiles(t) {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		first, _, _ := strings.Cut(string(b), "\n")
		rel, ok := strings.CutPrefix(first, prefix)
		if !ok {
			t.Errorf("%s starts with %q, want %q and the schema's path", file, first, prefix)
			continue
		}
		if got, err := filepath.Abs(filepath.Join(filepath.Dir(file), rel)); err != nil || got != self {
			t.Errorf("%s: $schema=%s leads to %s, not to the schema", file, rel, got)
		}
	}
	var raw struct {
		ID string `json:"$id"`
	}
	if err := json.Unmarshal(schema.Definition, &raw); err != nil {
		t.Fatal(err)
	}
	if raw.ID != schema.ID {
		t.Errorf("$id = %q, schema.ID = %q", raw.ID, schema.ID)
	}
	for _, doc := range []string{"../docs/format.md", "README.md"} {
		b, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), schema.ID) {
			t.Errorf("%s does not name the schema's $id %s", doc, schema.ID)
		}
	}
}

// TestSchemaAgreesAtTheEdges: documents near the lines the schema draws
// on its own (cron shapes, URLs, paths, event names) get the same verdict
// from ajv with the schema alone as from tasksync: the schema never
// refuses what tasksync accepts, and refuses these bad ones too.
func TestSchemaAgreesAtTheEdges(t *testing.T) {
	task := func(trigger, config string) string {
		return "apiVersion: tasksync/v1\nkind: ScheduledTask\nmetadata: {code: x}\nspec:\n  trigger: " + trigger + "\n  type: api_call\n  config: " + config + "\n"
	}
	py := func(file string) string {
		return "apiVersion: tasksync/v1\nkind: ScheduledTask\nmetadata: {code: x}\nspec:\n  trigger: {interval: 5m}\n  type: python_script\n  config: {file: " + file + "}\n"
	}
	url := func(u string) string { return task(`{interval: 5m}`, `{url: "`+u+`"}`) }
	cron := func(c string) string { return task(`{cron: "`+c+`"}`, `{url: "https://example.com/"}`) }
	cases := []struct {
		name, doc string
		valid     bool
	}{
		{"cron names and ranges", cron("0 2 * JAN-MAR MON-FRI"), true},
		{"cron descriptor", cron("@daily"), true},
		{"cron padded", cron("  0 2 * * *  "), true},
		{"cron tabs", cron(`0\t2 * * *`), true},
		{"cron TZ= field", cron("TZ=UTC 2 * * *"), false},
		{"cron CRON_TZ prefix", cron("CRON_TZ=UTC 0 2 * * *"), false},
		{"cron @every", cron("@every 5m"), false},
		{"cron four fields", cron("0 2 * *"), false},
		{"url port", url("https://example.com:8443/x"), true},
		{"url port with zeros", url("https://example.com:0443/x"), true},
		{"url empty port", url("https://example.com:/x"), true},
		{"url ipv6", url("https://[2001:db8::1]:8443/x"), true},
		{"url upper scheme", url("HTTPS://example.com/x"), true},
		{"url templated host and port", url("https://{{ event.data.host }}:8080/x"), true},
		{"url query with @", url("https://example.com/x?user=a@b"), true},
		{"url credentials", url("https://a:b@example.com/x"), false},
		{"url templated credentials", url("https://{{ event.data.user }}@example.com/x"), false},
		{"url port 65536", url("https://example.com:65536/x"), false},
		{"url port 0", url("https://example.com:0/x"), false},
		{"url no host", url("https:///x"), false},
		{"url ftp", url("ftp://example.com/x"), false},
		{"event name", task(`{event: "orders/shipped"}`, `{url: "https://example.com/"}`), true},
		{"event name like a namespace", task(`{event: "inngestion/done"}`, `{url: "https://example.com/"}`), true},
		{"event reserved", task(`{event: "Inngest/x"}`, `{url: "https://example.com/"}`), false},
		{"two triggers", task(`{cron: "0 2 * * *", at: "2030-01-01T00:00:00Z"}`, `{url: "https://example.com/"}`), false},
		{"no trigger", task(`{timezone: UTC}`, `{url: "https://example.com/"}`), false},
		{"jitter with interval", task(`{interval: 5m, jitter: 1m}`, `{url: "https://example.com/"}`), false},
		{"script path up", py("../x.py"), false},
		{"script path absolute", py("/x.py"), false},
		{"script path backslash", py(`'a\b.py'`), false},
	}
	v, err := definitions.NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	docs := map[string]document{}
	for _, c := range cases {
		var n yaml.Node
		if err := yaml.Unmarshal([]byte(c.doc), &n); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		j, err := toJSON(&n, 0)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(j)
		docs[c.name] = document{file: c.name, json: b}
	}
	rejected := ajvValidate(t, docs)
	for _, c := range cases {
		files := fstest.MapFS{"acme/x.yaml": {Data: []byte(c.doc)}, "acme/x.py": {Data: []byte("print(1)\n")}}
		r := v.NewLoader(files, definitions.Options{Now: func() time.Time { return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) }}).LoadTenant("acme")
		goValid := len(r.Problems) == 0
		if goValid != c.valid {
			t.Errorf("%s: tasksync valid=%v, want %v: %v", c.name, goValid, c.valid, r.Problems)
		}
		if rejected[c.name] == c.valid {
			t.Errorf("%s: ajv with the schema valid=%v, want %v", c.name, !rejected[c.name], c.valid)
		}
	}
}
