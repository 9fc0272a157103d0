package definitions_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/riveredge/tasksync/reconciler"
	"github.com/riveredge/tasksync/reconciler/definitions"
	"github.com/riveredge/tasksync/reconciler/definitions/deftest"
)

func symlink(target string) *fstest.MapFile {
	return &fstest.MapFile{Data: []byte(target), Mode: fs.ModeSymlink}
}

func codes(r *reconciler.TenantTree) []string {
	var out []string
	for _, d := range r.Definitions {
		out = append(out, d.Metadata.Code)
	}
	return out
}

func messages(ps []reconciler.Problem) string {
	var b strings.Builder
	for _, p := range ps {
		b.WriteString(p.String() + "\n")
	}
	return b.String()
}

// wantProblems fails the test for each of want that no problem's line
// holds, and returns the problems' lines.
func wantProblems(t *testing.T, ps []reconciler.Problem, want ...string) string {
	t.Helper()
	got := messages(ps)
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("problems lack %q:\n%s", w, got)
		}
	}
	return got
}

// TestKubernetesVolumeLayout: a ConfigMap mounted as a tenant directory, or
// as the whole tree, loads each file once, under its visible name.
func TestKubernetesVolumeLayout(t *testing.T) {
	v := newValidator(t)
	perTenant := fstest.MapFS{
		"acme/..2026_01_01_00_00_00.000000001/reports.yaml": {Data: []byte(deftest.Task{Code: "report"}.String())},
		"acme/..2026_01_01_00_00_00.000000001/more.yml":     {Data: []byte(deftest.Task{Code: "more"}.String())},
		"acme/..data":       symlink("..2026_01_01_00_00_00.000000001"),
		"acme/reports.yaml": symlink("..data/reports.yaml"),
		"acme/more.yml":     symlink("..data/more.yml"),
	}
	r := v.NewLoader(perTenant, definitions.Options{}).LoadTenant("acme")
	if len(r.Problems) > 0 {
		t.Fatalf("problems: %s", messages(r.Problems))
	}
	if got, want := codes(r), []string{"more", "report"}; !slices.Equal(got, want) {
		t.Errorf("codes = %v, want %v", got, want)
	}
	if got := r.Definitions[1].Source.Path; got != "acme/reports.yaml" {
		t.Errorf("source = %q, want the visible path acme/reports.yaml", got)
	}

	wholeTree := fstest.MapFS{
		"..2026_01_01/acme/a.yaml":   {Data: []byte(deftest.Task{Code: "a"}.String())},
		"..2026_01_01/globex/b.yaml": {Data: []byte(deftest.Task{Code: "b"}.String())},
		"..data":                     symlink("..2026_01_01"),
		"acme":                       symlink("..data/acme"),
		"globex":                     symlink("..data/globex"),
	}
	l := v.NewLoader(wholeTree, definitions.Options{})
	got := map[string][]string{}
	top, err := l.LoadAll(context.Background(), func(r *reconciler.TenantTree) {
		if len(r.Problems) > 0 {
			t.Errorf("%s: %s", r.Tenant, messages(r.Problems))
		}
		got[r.Tenant] = codes(r)
	})
	if err != nil || len(top) > 0 {
		t.Fatalf("LoadAll: %v %v", top, err)
	}
	if len(got) != 2 || !slices.Equal(got["acme"], []string{"a"}) || !slices.Equal(got["globex"], []string{"b"}) {
		t.Errorf("tenants = %v, want acme:[a] globex:[b]", got)
	}
}

// TestSymlinksOutsideTreeRefused covers relative escapes, absolute
// targets, loops, and an absolute target that AbsRoot maps back inside.
func TestSymlinksOutsideTreeRefused(t *testing.T) {
	v := newValidator(t)
	files := fstest.MapFS{
		"acme/ok.yaml":         {Data: []byte(deftest.Task{Code: "ok"}.String())},
		"acme/escape.yaml":     symlink("../../etc/passwd.yaml"),
		"acme/absolute.yaml":   symlink("/etc/tasks.yaml"),
		"acme/loop.yaml":       symlink("loop2.yaml"),
		"acme/loop2.yaml":      symlink("loop.yaml"),
		"acme/inside.yaml":     symlink("/srv/tree/acme/sub/inside.yaml"),
		"acme/other.yaml":      symlink("../globex/g.yaml"),
		"acme/otherdir":        symlink("../globex"),
		"acme/dirloop/x.yaml":  {Data: []byte(deftest.Task{Code: "x"}.String())},
		"acme/dirloop/self":    symlink("."),
		"acme/sub/inside.yaml": {Data: []byte(deftest.Task{Code: "inside"}.String())},
		"globex/g.yaml":        {Data: []byte(deftest.Task{Code: "g"}.String())},
	}
	r := v.NewLoader(files, definitions.Options{AbsRoot: "/srv/tree"}).LoadTenant("acme")
	msgs := wantProblems(t, r.Problems,
		"acme/absolute.yaml: symlink resolves outside the tree (-> /etc/tasks.yaml); refused",
		"acme/escape.yaml: symlink resolves outside the tree (-> ../../etc/passwd.yaml); refused",
		"acme/other.yaml: symlink leads out of the tenant's own directory; refused",
		"acme/otherdir: symlink leads out of the tenant's own directory; refused",
		"acme/loop.yaml: cannot resolve symlink (-> loop2.yaml): too many levels of symbolic links",
	)
	if got, want := codes(r), []string{"inside", "ok", "x"}; !slices.Equal(got, want) {
		t.Errorf("codes = %v, want %v (problems: %s)", got, want, msgs)
	}
}

// failingFS makes one path fail to open, as an I/O error would.
type failingFS struct {
	fstest.MapFS
	bad string
}

func (f failingFS) err(op, name string) error {
	if name == f.bad {
		return &fs.PathError{Op: op, Path: name, Err: errors.New("input/output error")}
	}
	return nil
}

func (f failingFS) Open(name string) (fs.File, error) {
	if err := f.err("open", name); err != nil {
		return nil, err
	}
	return f.MapFS.Open(name)
}

func (f failingFS) ReadDir(name string) ([]fs.DirEntry, error) {
	if err := f.err("readdir", name); err != nil {
		return nil, err
	}
	return f.MapFS.ReadDir(name)
}

// TestReadErrorsMarkTheTenant: a file or directory that cannot be read is
// reported with its path and marks the tenant as incompletely read, so
// nothing of it may be retired.
func TestReadErrorsMarkTheTenant(t *testing.T) {
	v := newValidator(t)
	base := fstest.MapFS{
		"acme/ok.yaml":      {Data: []byte(deftest.Task{Code: "ok"}.String())},
		"acme/broken.yaml":  {Data: []byte(deftest.Task{Code: "broken"}.String())},
		"acme/sub/x.yaml":   {Data: []byte(deftest.Task{Code: "x"}.String())},
		"globex/fine.yaml":  {Data: []byte(deftest.Task{Code: "fine"}.String())},
		"acme/dangling.yml": symlink("nowhere.yml"),
	}
	for _, bad := range []string{"acme/broken.yaml", "acme/sub"} {
		r := v.NewLoader(failingFS{base, bad}, definitions.Options{}).LoadTenant("acme")
		if !r.ReadError {
			t.Errorf("%s unreadable: ReadError = false, want true", bad)
		}
		if msgs := messages(r.Problems); !strings.Contains(msgs, bad+": cannot read") || !strings.Contains(msgs, "input/output error") {
			t.Errorf("%s unreadable: problems = %s", bad, msgs)
		}
	}
	r := v.NewLoader(base, definitions.Options{}).LoadTenant("globex")
	if r.ReadError || len(r.Problems) > 0 {
		t.Errorf("globex: ReadError = %v, problems %v; another tenant's trouble must not touch it", r.ReadError, r.Problems)
	}

	_, err := v.NewLoader(failingFS{base, "."}, definitions.Options{}).LoadAll(context.Background(), func(*reconciler.TenantTree) {})
	if err == nil {
		t.Errorf("LoadAll with an unreadable root: err = nil, want an error")
	}
}

// TestFailedFileContributesNothing: one bad document fails its whole file
// (last known good applies per file), while other files load, and the
// file's codes are still known.
func TestFailedFileContributesNothing(t *testing.T) {
	v := newValidator(t)
	files := fstest.MapFS{
		"acme/good.yaml":  {Data: []byte(deftest.Task{Code: "good"}.String())},
		"acme/mixed.yaml": {Data: []byte(deftest.Task{Code: "fine"}.String() + "---\n" + deftest.Task{Code: "bad", Trigger: "{interval: 5s}"}.String())},
	}
	r := v.NewLoader(files, definitions.Options{}).LoadTenant("acme")
	if got := codes(r); !slices.Equal(got, []string{"good"}) {
		t.Errorf("codes = %v, want [good]", got)
	}
	want := []reconciler.TreeFile{
		{Path: "acme/good.yaml", Codes: []string{"good"}},
		{Path: "acme/mixed.yaml", Failed: true, Codes: []string{"fine", "bad"}},
	}
	if fmt.Sprint(r.Files) != fmt.Sprint(want) {
		t.Errorf("files = %+v, want %+v", r.Files, want)
	}
	if len(r.Problems) != 1 || r.Problems[0].Line != 13 || r.Problems[0].Code != "bad" {
		t.Errorf("problems = %v, want one at line 13 (the second document's trigger) for code bad", r.Problems)
	}
}

// TestLimits: oversized files, deep nesting and alias bombs are refused
// quickly, with a message, and within a bounded time.
func TestLimits(t *testing.T) {
	v := newValidator(t)
	deep := "apiVersion: tasksync/v1\nkind: ScheduledTask\nmetadata: {code: deep}\nspec: {trigger: {interval: 5m}, type: api_call, config: {url: 'https://a.example.com', body: " +
		strings.Repeat("[", 70) + strings.Repeat("]", 70) + "}}\n"
	okDeep := "apiVersion: tasksync/v1\nkind: ScheduledTask\nmetadata: {code: deep}\nspec: {trigger: {interval: 5m}, type: api_call, config: {url: 'https://a.example.com', body: " +
		strings.Repeat("[", 58) + strings.Repeat("]", 58) + "}}\n"
	var bomb strings.Builder
	bomb.WriteString("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i < 10; i++ {
		fmt.Fprintf(&bomb, "a%d: &a%d [*a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d]\n", i, i, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1)
	}
	big := "# " + strings.Repeat("x", reconciler.MaxDefinitionFileBytes) + "\n" + deftest.Task{Code: "big"}.String()
	cases := []struct {
		name, data, want string
	}{
		{"too large", big, "bytes (1.0 MiB); definition files are limited to 1048576 bytes (1.0 MiB), split it into several files"},
		{"too deep", deep, "nesting deeper than 64 levels; flatten the document"},
		{"alias bomb", bomb.String(), "alias bomb is refused"},
		{"deep but allowed", okDeep, ""},
		{"merge into itself", "a: &a\n  <<: *a\n", "a merge key (<<) refers to the mapping it is in"},
		{"merge into itself with a key", "a: &a\n  <<: *a\n  x: 1\n", "a merge key (<<) refers to the mapping it is in"},
		{"too many documents", strings.Repeat("---\n{}\n", 5000), "more than 1000 documents in one file"},
		{"bombs spread over documents", strings.Repeat("---\n"+bomb.String()[:strings.Index(bomb.String(), "a5:")], 900), "alias bomb is refused"},
		{"syntax error at the end of a long file", strings.Repeat("- a\n", 16000) + "]\n", "invalid YAML"},
		{"duplicate codes everywhere", strings.Repeat("---\n"+deftest.Task{Code: "dup"}.String(), 900), "(and 898 more)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			r := v.NewLoader(fstest.MapFS{"acme/a.yaml": {Data: []byte(tc.data)}}, definitions.Options{}).LoadTenant("acme")
			msgs := messages(r.Problems)
			if tc.want == "" && msgs != "" {
				t.Errorf("problems = %s, want none", msgs)
			}
			if tc.want != "" && !strings.Contains(msgs, tc.want) {
				t.Errorf("problems = %s, want one containing %q", msgs, tc.want)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("took %v; limits must stop the work early", d)
			}
		})
	}
}

// TestDuplicateCodesNameBothPlaces: a code used twice in a tenant is
// reported at each place, naming the other; both files fail, so neither
// replaces what is applied.
func TestDuplicateCodesNameBothPlaces(t *testing.T) {
	v := newValidator(t)
	files := fstest.MapFS{
		"acme/a.yaml":   {Data: []byte(deftest.Task{Code: "dup"}.String())},
		"acme/b/c.yaml": {Data: []byte("# moved here\n" + deftest.Task{Code: "dup"}.String())},
		"globex/a.yaml": {Data: []byte(deftest.Task{Code: "dup"}.String())},
	}
	l := v.NewLoader(files, definitions.Options{})
	r := l.LoadTenant("acme")
	want := "acme/a.yaml:3:18: metadata.code: duplicate code \"dup\", also defined at acme/b/c.yaml:4:18; codes must be unique per tenant across kinds and files\n" +
		"acme/b/c.yaml:4:18: metadata.code: duplicate code \"dup\", also defined at acme/a.yaml:3:18; codes must be unique per tenant across kinds and files\n"
	if got := messages(r.Problems); got != want {
		t.Errorf("problems:\n%s\nwant:\n%s", got, want)
	}
	if len(r.Definitions) != 0 {
		t.Errorf("definitions = %v, want none", codes(r))
	}
	if g := l.LoadTenant("globex"); len(g.Problems) > 0 {
		t.Errorf("globex: %s; the same code in another tenant is fine", messages(g.Problems))
	}
}

// TestAtInThePastIsAWarning uses an injected clock: a one-shot whose time
// has passed is loaded (it may have fired: it is history) with a warning,
// never a problem that would hold the file at its last applied version.
func TestAtInThePastIsAWarning(t *testing.T) {
	v := newValidator(t)
	doc := "apiVersion: tasksync/v1\nkind: ScheduledTask\nmetadata: {code: once}\nspec: {trigger: {at: '2030-01-01T00:00:00+01:00'}, type: api_call, config: {url: 'https://a.example.com'}}\n"
	files := fstest.MapFS{"acme/a.yaml": {Data: []byte(doc)}}
	before := time.Date(2029, 12, 31, 22, 0, 0, 0, time.UTC)
	after := time.Date(2029, 12, 31, 23, 0, 0, 0, time.UTC) // the same instant as the trigger
	if r := v.NewLoader(files, definitions.Options{Now: func() time.Time { return before }}).LoadTenant("acme"); len(r.Problems) > 0 || len(r.Warnings) > 0 {
		t.Errorf("before: problems %s, warnings %s", messages(r.Problems), messages(r.Warnings))
	}
	r := v.NewLoader(files, definitions.Options{Now: func() time.Time { return after }}).LoadTenant("acme")
	if len(r.Problems) > 0 {
		t.Errorf("after: problems = %s, want none", messages(r.Problems))
	}
	if len(r.Definitions) != 1 {
		t.Errorf("after: definitions = %v, want once", codes(r))
	}
	want := "acme/a.yaml:4:22: warning: spec.trigger.at: 2030-01-01T00:00:00+01:00 has passed; if this one-shot has not fired yet it never will: set a future time, or remove the definition once its run is history\n"
	if got := messages(r.Warnings); got != want {
		t.Errorf("after: warnings = %q, want %q", got, want)
	}
}

// TestIgnoredNames: dotfiles, dot-directories (.git), "_" names and editor
// or rsync temporaries are never read, even when broken.
func TestIgnoredNames(t *testing.T) {
	v := newValidator(t)
	broken := &fstest.MapFile{Data: []byte("{{{ not yaml")}
	files := fstest.MapFS{
		"acme/ok.yaml":          {Data: []byte(deftest.Task{Code: "ok"}.String())},
		"acme/.hidden.yaml":     broken,
		"acme/_draft.yaml":      broken,
		"acme/x.yaml~":          broken,
		"acme/x.yaml.swp":       broken,
		"acme/x.yaml.tmp":       broken,
		"acme/x.yaml.part":      broken,
		"acme/.git/config.yaml": broken,
		"acme/_drafts/a.yaml":   broken,
		"acme/notes.txt":        broken,
		".git/HEAD.yaml":        broken,
		"_shared/common.yaml":   broken,
	}
	l := v.NewLoader(files, definitions.Options{})
	var got []string
	top, err := l.LoadAll(context.Background(), func(r *reconciler.TenantTree) {
		if len(r.Problems) > 0 {
			t.Errorf("%s: %s", r.Tenant, messages(r.Problems))
		}
		got = append(got, r.Tenant)
		if len(r.Files) != 1 {
			t.Errorf("files = %v, want only acme/ok.yaml", r.Files)
		}
	})
	if err != nil || len(top) > 0 || !slices.Equal(got, []string{"acme"}) {
		t.Errorf("LoadAll: tenants %v, top %v, err %v", got, top, err)
	}
}

// TestNoCrossTenantLinks: a tenant directory linked to another tenant's,
// and special files such as FIFOs, are refused without being opened.
func TestNoCrossTenantLinks(t *testing.T) {
	v := newValidator(t)
	files := fstest.MapFS{
		"globex/g.yaml":           {Data: []byte(deftest.Task{Code: "g"}.String())},
		"acme":                    symlink("globex"),
		"initech/pipe.yaml":       {Mode: fs.ModeNamedPipe},
		"initech/job.yaml":        {Data: []byte(deftest.Task{Code: "job", Type: "python_script", Config: "{file: scripts/fifo.py}"}.String())},
		"initech/scripts/fifo.py": {Mode: fs.ModeNamedPipe},
	}
	l := v.NewLoader(files, definitions.Options{})
	r := l.LoadTenant("acme")
	if !r.ReadError || !strings.Contains(messages(r.Problems), "acme: cannot read tenant directory: it is a symlink to globex") {
		t.Errorf("acme -> globex: ReadError %v, problems %s", r.ReadError, messages(r.Problems))
	}
	r = l.LoadTenant("initech")
	wantProblems(t, r.Problems, "initech/pipe.yaml: not a regular file", "spec.config.file: script \"scripts/fifo.py\": not a regular file")
}

// TestSymlinkOutOfTenantRevealsNothing: a link (or a chain of links, or a
// script path) leading into another tenant's directory is refused with
// the same message whether its target exists or not, so that no tenant
// can probe which files another one has.
func TestSymlinkOutOfTenantRevealsNothing(t *testing.T) {
	v := newValidator(t)
	script := func(code, file string) string {
		return deftest.Task{Code: code, Type: "python_script", Config: "{file: " + file + "}"}.String()
	}
	files := fstest.MapFS{
		"acme/private.yaml":    {Data: []byte(deftest.Task{Code: "private"}.String())},
		"acme/run.py":          {Data: []byte("print(1)")},
		"evil/a.yaml":          symlink("../acme/private.yaml"),
		"evil/b.yaml":          symlink("../acme/nothere.yaml"),
		"evil/c.yaml":          symlink("hop.yaml"),
		"evil/hop.yaml":        symlink("../acme/private.yaml"),
		"evil/d.yaml":          symlink("hop2.yaml"),
		"evil/hop2.yaml":       symlink("../acme/nothere.yaml"),
		"evil/e.yaml":          symlink("sub/../../acme/private.yaml"),
		"evil/f.yaml":          symlink("sub/../../acme/nothere.yaml"),
		"evil/sub/keep.txt":    {Data: []byte("x")},
		"evil/dir":             symlink("../acme"),
		"evil/nodir":           symlink("../nothere"),
		"evil/s1.yaml":         {Data: []byte(script("s1", "dir/run.py"))},
		"evil/s2.yaml":         {Data: []byte(script("s2", "dir/nothere.py"))},
		"evil/abs.yaml":        symlink("/srv/tree/acme/private.yaml"),
		"evil/absmissing.yaml": symlink("/srv/tree/acme/nothere.yaml"),
	}
	r := v.NewLoader(files, definitions.Options{AbsRoot: "/srv/tree"}).LoadTenant("evil")
	got := map[string]string{}
	for _, p := range r.Problems {
		got[p.Path] = p.Message
	}
	for _, pair := range [][2]string{
		{"evil/a.yaml", "evil/b.yaml"}, {"evil/c.yaml", "evil/d.yaml"}, {"evil/e.yaml", "evil/f.yaml"},
		{"evil/dir", "evil/nodir"}, {"evil/s1.yaml", "evil/s2.yaml"}, {"evil/abs.yaml", "evil/absmissing.yaml"},
		{"evil/a.yaml", "evil/dir"},
	} {
		exists, missing := got[pair[0]], got[pair[1]]
		if exists == "" || exists != strings.ReplaceAll(missing, "nothere.py", "run.py") {
			t.Errorf("%s (target exists) and %s (target missing) read differently:\n  %q\n  %q", pair[0], pair[1], exists, missing)
		}
		for _, m := range []string{exists, missing} {
			if strings.Contains(m, "no such file") || strings.Contains(m, "private") {
				t.Errorf("the message tells about the target: %q", m)
			}
		}
	}
	if r.ReadError {
		t.Errorf("ReadError = true: a link out of the tenant is refused, not unreadable (problems: %s)", messages(r.Problems))
	}
}

// TestCronDSTWarnings: a cron time that a daylight-saving change in its
// zone skips or repeats is a warning (the definition loads); a cron that
// runs every hour, or in a zone without DST, is not.
func TestCronDSTWarnings(t *testing.T) {
	v := newValidator(t)
	now := func() time.Time { return time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC) }
	cases := []struct{ cron, zone, want string }{
		{"30 2 * * *", "America/New_York", "spec.trigger.cron: in America/New_York, 02:30 does not exist on Sun 2027-03-14, when daylight saving time starts (the clocks jump from 02:00 to 03:00): there is no run that day; to avoid it, pick a time outside 02:00-03:00, or timezone UTC (a zone without daylight saving time)"},
		{"30 1 * * 0", "America/New_York", "spec.trigger.cron: in America/New_York, 01:30 happens twice on Sun 2027-11-07, when daylight saving time ends (the clocks go back from 02:00 to 01:00): it runs twice that day; to avoid it, pick a time outside 01:00-02:00, or timezone UTC (a zone without daylight saving time)"},
		{"0 2 * * *", "Europe/Berlin", "spec.trigger.cron: in Europe/Berlin, 02:00 does not exist on Sun 2027-03-28, when daylight saving time starts (the clocks jump from 02:00 to 03:00): there is no run that day; 02:00 happens twice on Sun 2027-10-31, when daylight saving time ends (the clocks go back from 03:00 to 02:00): it runs twice that day; to avoid it, pick a time outside 02:00-03:00, or timezone UTC (a zone without daylight saving time)"},
		{"30 2 * * *", "Australia/Sydney", "spec.trigger.cron: in Australia/Sydney, 02:30 happens twice on Sun 2027-04-04, when daylight saving time ends (the clocks go back from 03:00 to 02:00): it runs twice that day; 02:30 does not exist on Sun 2027-10-03, when daylight saving time starts (the clocks jump from 02:00 to 03:00): there is no run that day; to avoid it, pick a time outside 02:00-03:00, or timezone UTC (a zone without daylight saving time)"},
		{"30 2 * * *", "UTC", ""},
		{"30 2 * * *", "Asia/Shanghai", ""},
		{"30 4 * * *", "America/New_York", ""},
		{"30 2 * * 1-5", "America/New_York", ""}, // the changes fall on Sundays
		{"15 * * * *", "America/New_York", ""},   // every hour: a skipped hour is in the nature of it
	}
	for _, tc := range cases {
		t.Run(tc.cron+" "+tc.zone, func(t *testing.T) {
			doc := fmt.Sprintf("apiVersion: tasksync/v1\nkind: ScheduledTask\nmetadata: {code: c}\nspec:\n  trigger: {cron: %q, timezone: %s}\n  type: api_call\n  config: {url: 'https://a.example.com'}\n", tc.cron, tc.zone)
			r := v.NewLoader(fstest.MapFS{"acme/a.yaml": {Data: []byte(doc)}}, definitions.Options{Now: now}).LoadTenant("acme")
			if len(r.Problems) > 0 || len(r.Definitions) != 1 {
				t.Fatalf("problems %s, definitions %v; want the definition loaded", messages(r.Problems), codes(r))
			}
			got := ""
			if len(r.Warnings) == 1 {
				got = r.Warnings[0].Message
			} else if len(r.Warnings) > 1 {
				got = messages(r.Warnings)
			}
			if got != tc.want {
				t.Errorf("warning = %q\nwant      %q", got, tc.want)
			}
		})
	}
}

// TestSchemaOnlyRulesStand: where the published schema refuses what
// tasksync's own checks let pass (here a cron expression whose fields a
// no-break space separates: the schema's pattern takes ASCII white space
// only), the document is refused with the schema's message, as an editor
// using the schema refuses it.
func TestSchemaOnlyRulesStand(t *testing.T) {
	v := newValidator(t)
	doc := "apiVersion: tasksync/v1\nkind: ScheduledTask\nmetadata: {code: r}\nspec: {trigger: {cron: \"0\u00a02 * * *\"}, type: api_call, config: {url: 'https://a.example.com'}}\n"
	r := v.NewLoader(fstest.MapFS{"acme/a.yaml": {Data: []byte(doc)}}, definitions.Options{}).LoadTenant("acme")
	wantProblems(t, r.Problems, "spec.trigger.cron:")
	if len(r.Definitions) != 0 {
		t.Errorf("definitions = %v, want none", codes(r))
	}
}

// TestKubernetesWholeTreeScripts: in a tree published as a Kubernetes
// volume publishes one (acme -> ..data/acme, ..data -> ..2026_…), a
// python_script file inside the
// tenant's directory is read; one in another tenant's is still refused.
func TestKubernetesWholeTreeScripts(t *testing.T) {
	v := newValidator(t)
	def := func(code, file string) string {
		return "apiVersion: tasksync/v1\nkind: ScheduledTask\nmetadata: {code: " + code + "}\nspec:\n  trigger: {interval: 5m}\n  type: python_script\n  config: {file: " + file + "}\n"
	}
	tree := fstest.MapFS{
		"..2026_01_01/acme/a.yaml":          {Data: []byte(def("a", "scripts/job.py"))},
		"..2026_01_01/acme/d.yaml":          {Data: []byte(def("d", "../globex/steal.py"))},
		"..2026_01_01/acme/scripts/job.py":  {Data: []byte("print('ok')\n")},
		"..2026_01_01/acme/scripts/link.py": symlink("../../globex/steal.py"),
		"..2026_01_01/acme/c.yaml":          {Data: []byte(def("c", "scripts/link.py"))},
		"..2026_01_01/globex/steal.py":      {Data: []byte("print('globex')\n")},
		"..2026_01_01/globex/b.yaml":        {Data: []byte(def("g", "steal.py"))},
		"..data":                            symlink("..2026_01_01"),
		"acme":                              symlink("..data/acme"),
		"globex":                            symlink("..data/globex"),
	}
	r := v.NewLoader(tree, definitions.Options{}).LoadTenant("acme")
	if got := codes(r); !slices.Equal(got, []string{"a"}) {
		t.Errorf("acme: definitions %v, want [a]; problems:\n%s", got, messages(r.Problems))
	}
	wantProblems(t, r.Problems, "acme/d.yaml", "acme/c.yaml")
	if g := v.NewLoader(tree, definitions.Options{}).LoadTenant("globex"); len(g.Problems) > 0 || len(g.Definitions) != 1 {
		t.Errorf("globex: %v, problems:\n%s", codes(g), messages(g.Problems))
	}
}
