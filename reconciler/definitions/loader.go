package definitions

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	_ "time/tzdata" // time zones must validate on hosts without a zoneinfo database

	"golang.org/x/sync/errgroup"
	"gopkg.in/yaml.v3"

	"github.com/riveredge/tasksync/reconciler"
)

// Validator holds what is compiled once per process: the JSON Schema and
// the CEL environments. It is safe for concurrent use.
type Validator struct {
	schema *schemaValidator
	cel    *celChecker
	zones  sync.Map // IANA name → *time.Location; only valid names are kept

	gaps     sync.Map // "zone expr" → shortest gap between runs (reconciler.Duration)
	gapCount atomic.Int64
}

// NewValidator compiles the embedded schema and the CEL environments.
func NewValidator() (*Validator, error) {
	s, err := compileSchema()
	if err != nil {
		return nil, err
	}
	c, err := newCELChecker()
	if err != nil {
		return nil, err
	}
	return &Validator{schema: s, cel: c}, nil
}

// Options tune a Loader.
type Options struct {
	// Now is the clock `at` triggers are compared with; default time.Now.
	Now func() time.Time
	// Workers bounds how many tenants load at once; default GOMAXPROCS.
	Workers int
	// AbsRoot is the tree's absolute path on disk, if it has one. Symlinks
	// with absolute targets under it are followed; other absolute targets
	// are refused as outside the tree.
	AbsRoot string
	// PathPrefix is put before every path in problems and their messages,
	// so that they read as the user named the tree ("tasks.d/"). Paths in
	// results (Definition.Source, FileResult) stay relative to the tree.
	PathPrefix string
	// Secrets, when set, is asked whether tenant may use the secret name
	// of each ${secret:NAME} where secrets are resolved; its error is the
	// problem reported at the string. nil leaves grants unchecked (they
	// live on the host that runs the tasks, not in the tree).
	Secrets func(tenant, name string) error
	// Reuse, when positive, keeps each file's parsed result and reuses it
	// while nothing it was made from changed (the file's stamp, its
	// scripts', its grants' answers: see fileCache), for at most Reuse to
	// twice Reuse. Zero parses every file at every load, which suits a
	// tree loaded once (validate, plan). Only a tree on disk (DirFS,
	// os.DirFS) gives the inodes and change times reuse needs.
	Reuse time.Duration
	// KeepParsed bounds, with Reuse, the tenants whose parsed results are
	// kept: those of the KeepParsed tenants loaded last; default
	// DefaultKeepParsed, negative none. Of every other tenant only what
	// TenantStamp checks is kept (each file's stamp, its scripts' stamps,
	// its grant answers), so that an unchanged tenant is still skipped
	// without a parse, while a load of it parses its files again.
	KeepParsed int
	// Provenance, when set, gives the git commit each loaded definition
	// carries (reconciler.Definition.Commit). NewDirLoader sets it for
	// the tree's directory.
	Provenance *Provenance
	// MaxDefinitions is the most definitions a tenant may have (default
	// DefaultMaxDefinitions, negative no limit). A tenant over it is a
	// problem of its directory and is held as one that could not be read:
	// nothing of it is applied or retired, its applied definitions stay.
	MaxDefinitions int
	// IntervalUnit is the unit and least value of interval triggers;
	// default (and for every tree a user writes) a minute. Tests of the
	// schedule against a real engine set a second, so that an interval's
	// fires come seconds apart; no command sets it.
	IntervalUnit time.Duration
}

// DefaultMaxDefinitions is Options.MaxDefinitions' default: a tenant's
// definitions cost the daemon and the Inngest server in proportion (one
// function each), and one tenant's thousands would hold the others' syncs
// back.
const DefaultMaxDefinitions = 1000

// Loader reads one tree.
type Loader struct {
	v     *Validator
	opts  Options
	cache *fileCache // nil: no reuse

	// dir is the tree's absolute path on disk as given, its links
	// unresolved, when the loader re-resolves it at every read
	// (NewDirLoader); "" for a tree whose fs.FS is fixed.
	dir      string
	mu       sync.Mutex
	root     treeRoot // the tree as last resolved
	resolved bool     // dir resolved to root at the last check

	parsed, reused atomic.Int64
}

// treeRoot is the tree one read works on: its file system and its real
// absolute path (Options.AbsRoot).
type treeRoot struct {
	fsys fs.FS
	abs  string
	id   dirID // for a tree on disk, the directory at abs when it was resolved
}

// NewLoader returns a Loader for the tree fsys.
func (v *Validator) NewLoader(fsys fs.FS, opts Options) *Loader {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Workers <= 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
	}
	if opts.KeepParsed == 0 {
		opts.KeepParsed = DefaultKeepParsed
	}
	l := &Loader{v: v, opts: opts, root: treeRoot{fsys: fsys, abs: opts.AbsRoot}}
	if opts.Reuse > 0 {
		l.cache = &fileCache{reuse: opts.Reuse, keepParsed: max(opts.KeepParsed, 0)}
	}
	return l
}

// Tenants lists the tree's tenant directories and reports what at its top
// level is not one. It fails only when the root itself cannot be read.
//
// A tree on disk reached through a symlink that is swapped (git-sync's
// current, see NewDirLoader) is listed where the link points now; a
// listing during which the link moved is read again, so that a tree
// being deleted after the swap is never listed half-gone.
func (l *Loader) Tenants() ([]string, []reconciler.Problem, error) {
	for attempt := 1; ; attempt++ {
		root, err := l.current()
		if err != nil {
			return nil, nil, fmt.Errorf("read definitions tree: %w", err)
		}
		tenants, problems, err := l.tenantsAt(root)
		switch {
		case !l.moved(root):
			if err != nil {
				return nil, nil, fmt.Errorf("read definitions tree: %w", err)
			}
			return tenants, problems, nil
		case attempt == maxReadAttempts:
			return nil, nil, fmt.Errorf("read definitions tree: %w", errTreeMoved)
		}
	}
}

// tenantsAt is Tenants of the tree at root.
func (l *Loader) tenantsAt(root treeRoot) ([]string, []reconciler.Problem, error) {
	entries, err := fs.ReadDir(root.fsys, ".")
	if err != nil {
		return nil, nil, err
	}
	var tenants []string
	var problems []reconciler.Problem
	for _, e := range entries {
		name := e.Name()
		if ignored(name) {
			continue
		}
		isDir := e.IsDir()
		if e.Type()&fs.ModeSymlink != 0 {
			target, err := resolve(root.fsys, root.abs, name)
			var info fs.FileInfo
			if err == nil {
				info, err = fs.Stat(root.fsys, target)
			}
			if err != nil {
				if TenantPattern.MatchString(name) {
					// Listed all the same: LoadTenant reports the problem
					// and marks the tenant unreadable, so that a broken
					// link retires nothing.
					tenants = append(tenants, name)
					continue
				}
				problems = append(problems, reconciler.Problem{Path: l.opts.PathPrefix + name, Message: symlinkProblem(err)})
				continue
			}
			isDir = info.IsDir()
		}
		switch {
		case isDir && TenantPattern.MatchString(name):
			tenants = append(tenants, name)
		case isDir:
			problems = append(problems, reconciler.Problem{Path: l.opts.PathPrefix + name, Message: TenantCodeProblem(name)})
		case isDefinitionFile(name):
			problems = append(problems, reconciler.Problem{Path: l.opts.PathPrefix + name, Message: misplacedFileProblem(name)})
		}
	}
	for i := range problems {
		problems[i] = problems[i].Escaped()
	}
	if l.cache != nil {
		l.cache.keepOnly(tenants)
	}
	return tenants, problems, nil
}

// LoadAll loads every tenant, several at a time, and calls fn with each
// result, one call at a time, in no particular order. It returns the
// problems of the tree's top level, or an error when the root cannot be
// read.
func (l *Loader) LoadAll(ctx context.Context, fn func(*reconciler.TenantTree)) ([]reconciler.Problem, error) {
	tenants, problems, err := l.Tenants()
	if err != nil {
		return nil, err
	}
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(l.opts.Workers)
	for _, t := range tenants {
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error {
			r := l.load(gctx, t, nil)
			mu.Lock()
			defer mu.Unlock()
			fn(r)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return problems, ctx.Err()
}

// Revision is the git commit the tree is at now (see Provenance); none
// without Options.Provenance.
func (l *Loader) Revision() Revision {
	if l.opts.Provenance == nil {
		return Revision{}
	}
	return l.opts.Provenance.Revision()
}

// LoadTenant loads every definition file of one tenant directory.
func (l *Loader) LoadTenant(tenant string) *reconciler.TenantTree {
	return l.load(context.Background(), tenant, nil)
}

// LoadFiles loads only the named files (paths relative to the tree root,
// all inside tenant's directory) as that tenant's definitions.
func (l *Loader) LoadFiles(tenant string, files []string) *reconciler.TenantTree {
	return l.load(context.Background(), tenant, files)
}

// load loads a tenant; it stops between files once ctx is done, leaving
// the tenant marked unreadable (so that nothing is retired for it).
//
// A tree on disk is loaded where its path resolves now. When the path
// resolves elsewhere after the load (a checkout swapped its link during
// it, and may be deleting the tree that was read), the tenant is loaded
// again, a few times at most; then, or when the path does not resolve
// at all (a dangling link), the tenant is marked unreadable, which
// retires nothing, and the next pass reads it again.
func (l *Loader) load(ctx context.Context, tenant string, only []string) *reconciler.TenantTree {
	for attempt := 1; ; attempt++ {
		root, err := l.current()
		if err != nil {
			return unreadable(tenant, l.opts.PathPrefix, "the definitions tree's path does not resolve ("+ioReason(err)+"); it is read again at the next pass")
		}
		res := l.loadAt(ctx, root, tenant, only)
		if !l.moved(root) {
			return res
		}
		if attempt == maxReadAttempts {
			return unreadable(tenant, l.opts.PathPrefix, errTreeMoved.Error()+"; it is read again at the next pass")
		}
	}
}

// maxReadAttempts bounds how many times one read starts again because
// the tree's link moved during it.
const maxReadAttempts = 3

// errTreeMoved is a read during which the tree's path came to resolve to
// another directory every time it was tried.
var errTreeMoved = errors.New("the definitions tree was replaced while it was read (its path now leads to another directory)")

// unreadable is the result of a tenant that could not be read at all.
func unreadable(tenant, prefix, msg string) *reconciler.TenantTree {
	return &reconciler.TenantTree{Tenant: tenant, ReadError: true, Problems: []reconciler.Problem{
		reconciler.Problem{Path: prefix + tenant, Tenant: tenant, Message: "cannot read tenant directory: " + msg}.Escaped(),
	}}
}

// loadAt is load of the tree at root. Problems are escaped here, where
// they leave the loader (see reconciler.Problem.Escaped).
func (l *Loader) loadAt(ctx context.Context, root treeRoot, tenant string, only []string) *reconciler.TenantTree {
	res := &reconciler.TenantTree{Tenant: tenant}
	tenantReal, w, err := l.tenantWalker(root, tenant)
	if err != nil {
		res.ReadError = true
		res.Problems = append(res.Problems, reconciler.Problem{Path: l.opts.PathPrefix + tenant, Tenant: tenant, Message: "cannot read tenant directory: " + symlinkProblem(err)})
		return res
	}
	if only == nil {
		w.walk(tenant, tenantReal, 0)
	} else {
		for _, f := range only {
			real, err := w.res.resolve(f)
			if _, foreign := err.(*foreignError); foreign || err == nil && !w.inside(real) {
				w.fail(f, "%s", leadsOut)
				continue
			}
			if err != nil {
				w.readErr = true
				w.fail(f, "cannot read file: %s", ioReason(err))
				continue
			}
			w.files = append(w.files, fileRef{visible: f, real: real})
		}
	}
	res.ReadError = w.readErr
	for _, p := range w.problems {
		res.Problems = append(res.Problems, reconciler.Problem{Path: l.opts.PathPrefix + p.path, Tenant: tenant, Message: p.msg})
	}
	slices.SortFunc(w.files, func(a, b fileRef) int { return strings.Compare(a.visible, b.visible) })

	tl := &tenantLoad{l: l, fsys: root.fsys, res: res, tenantVisible: tenant, tenantReal: tenantReal, resolver: w.res, now: l.opts.Now()}
	if l.cache != nil && only == nil {
		tl.prev, tl.keep = l.cache.forTenant(tenant), make(map[string]*cachedFile, len(w.files))
		defer func() { l.cache.store(tenant, tl.keep) }()
		// Sized from the last load, so that a resync that reuses every
		// file copies each definition once, not at every growth.
		n := 0
		for _, e := range tl.prev {
			if e.out != nil {
				n += len(e.out.defs)
			}
		}
		tl.defs = make([]reconciler.Definition, 0, n)
	}
	for _, f := range w.files {
		if ctx.Err() != nil {
			res.ReadError = true
			tl.problem(f.visible, 0, 0, "", "not read: "+ctx.Err().Error())
			break
		}
		tl.file(f)
	}
	tl.uniqueCodes()
	tl.uniqueSettings()
	for i := range res.Files {
		if tl.failed[res.Files[i].Path] {
			res.Files[i].Failed = true
		}
	}
	valid := 0
	for _, d := range tl.defs {
		if !tl.failed[d.Source.Path] {
			valid++
		}
	}
	if valid > 0 {
		res.Definitions = make([]reconciler.Definition, 0, valid)
	}
	for _, d := range tl.defs {
		if !tl.failed[d.Source.Path] {
			res.Definitions = append(res.Definitions, d)
		}
	}
	if max := cmp.Or(l.opts.MaxDefinitions, DefaultMaxDefinitions); only == nil && max > 0 && len(res.Definitions) > max {
		res.ReadError = true
		res.Problems = append(res.Problems, reconciler.Problem{Path: l.opts.PathPrefix + tenant, Tenant: tenant,
			Message: fmt.Sprintf("the tenant has %d definitions, more than the %d a tenant may have (--max-definitions): none of its changes is applied and its applied definitions stay until it has at most %d", len(res.Definitions), max, max)})
	}
	slices.SortFunc(res.Definitions, func(a, b reconciler.Definition) int { return strings.Compare(a.Metadata.Code, b.Metadata.Code) })
	// Read after the files, so that a commit checked out during the load
	// is not claimed for files read before it.
	if commit := l.Revision().Commit; commit != "" {
		for i := range res.Definitions {
			res.Definitions[i].Commit = commit
		}
	}
	for i := range res.Problems {
		res.Problems[i] = res.Problems[i].Escaped()
	}
	for i := range res.Warnings {
		res.Warnings[i] = res.Warnings[i].Escaped()
	}
	reconciler.SortProblems(res.Problems)
	reconciler.SortProblems(res.Warnings)
	if tl.keep != nil && !res.ReadError {
		res.Stamp = tenantStamp(tenantReal, w, tl.keep)
	}
	return res
}

// tenantWalker resolves a tenant directory and returns where it leads and
// a walker confined to it.
func (l *Loader) tenantWalker(root treeRoot, tenant string) (string, *walker, error) {
	var crossed []string
	tenantReal, err := resolver{fsys: root.fsys, absRoot: root.abs, crossed: &crossed}.resolve(tenant)
	if err == nil && tenantReal != tenant {
		// A tenant directory may be a link into a hidden volume directory
		// (..data), never into another tenant's directory.
		first, _, _ := strings.Cut(tenantReal, "/")
		if !strings.HasPrefix(first, ".") {
			err = fmt.Errorf("it is a symlink to %s, another tenant's directory or a place outside the hidden volume directories; refused", tenantReal)
		}
	}
	if err != nil {
		return "", nil, err
	}
	home := &tenantHome{dirs: []string{tenant, tenantReal}, links: map[string]bool{}}
	for _, c := range crossed {
		home.links[c] = true
	}
	return tenantReal, &walker{res: resolver{fsys: root.fsys, absRoot: root.abs, home: home}, seen: map[string]bool{}}, nil
}

// tenantLoad is the state of loading one tenant.
type tenantLoad struct {
	l             *Loader
	fsys          fs.FS // the tree as this load resolved it
	res           *reconciler.TenantTree
	tenantVisible string
	tenantReal    string
	resolver      resolver // confined to the tenant's directory
	now           time.Time
	defs          []reconciler.Definition
	codes         []codeSite // every code seen, valid or not, for uniqueness
	failed        map[string]bool
	perFile       map[string]int // problems reported per file
	settings      []settingsSite // the TenantSettings documents

	// prev are the tenant's stored results, keep those to store after
	// this load; both nil when nothing is reused.
	prev, keep map[string]*cachedFile
	// recording: this tenantLoad parses one file for the cache, and
	// records the scripts it reads and the grants it asks.
	recording bool
	scripts   []scriptDep
	grants    []grantAnswer
	unsettled bool // a script changed too recently to be relied on
}

// codeSite is where a document declared its code.
type codeSite struct {
	code      string
	path      string
	line, col int
}

func (t *tenantLoad) problem(file string, line, col int, code, msg string) {
	if t.failed == nil {
		t.failed = map[string]bool{}
	}
	t.failed[file] = true
	if t.perFile == nil {
		t.perFile = map[string]int{}
	}
	t.perFile[file]++
	switch n := t.perFile[file]; {
	case n == reconciler.MaxProblemsPerFile+1:
		line, col, code = 0, 0, ""
		msg = fmt.Sprintf("more than %d problems; fix these first", reconciler.MaxProblemsPerFile)
	case n > reconciler.MaxProblemsPerFile:
		return
	}
	t.res.Problems = append(t.res.Problems, reconciler.Problem{
		Path: t.l.opts.PathPrefix + file, Line: line, Column: col, Tenant: t.res.Tenant, Code: code, Message: msg,
	})
}

// warning records a warning, which fails nothing.
func (t *tenantLoad) warning(file string, line, col int, code, msg string) {
	t.res.Warnings = append(t.res.Warnings, reconciler.Problem{
		Path: t.l.opts.PathPrefix + file, Line: line, Column: col, Tenant: t.res.Tenant, Code: code, Message: msg, Severity: reconciler.SeverityWarning,
	})
}

// file loads one definition file into the tenant: its stored result when
// nothing it was made from changed, else it is parsed now (and its result
// stored, when the loader reuses results). A stripped entry (fileCache)
// has no result to reuse: the file is parsed, and its new entry keeps the
// stripped one's id when it was made from the same.
func (t *tenantLoad) file(f fileRef) {
	prev := t.reusable(f)
	if prev != nil && prev.out != nil {
		t.l.reused.Add(1)
		t.keep[f.visible] = prev
		t.add(f.visible, prev.out)
		return
	}
	t.l.parsed.Add(1)
	if t.keep == nil {
		t.parse(f)
		return
	}
	// The stamp is taken before the file is read: a change after it
	// shows at the next load.
	start := time.Now()
	st, cacheable := stampOf(t.fsys, f.real)
	one := &tenantLoad{l: t.l, fsys: t.fsys, res: &reconciler.TenantTree{Tenant: t.res.Tenant}, tenantVisible: t.tenantVisible,
		tenantReal: t.tenantReal, resolver: t.resolver, now: t.now, recording: true}
	one.parse(f)
	out := one.outcome(f.visible)
	if cacheable && st.settled(start) && !one.unsettled && !out.readError {
		t.keep[f.visible] = newEntry(f.visible, prev, st, one.scripts, one.grants, one.until(), out)
	}
	t.add(f.visible, out)
}

// parse reads, parses and validates one definition file into t.
func (t *tenantLoad) parse(f fileRef) {
	fr := reconciler.TreeFile{Path: f.visible}
	defer func() { t.res.Files = append(t.res.Files, fr) }()
	data, err := readLimited(t.fsys, f.real)
	if err != nil {
		var tooBig *tooLargeError
		var linked *hardLinkError
		if !errors.As(err, &tooBig) && !errors.As(err, &linked) {
			t.res.ReadError = true
		}
		t.problem(f.visible, 0, 0, "", err.Error())
		return
	}
	docs, errs := parseDocuments(data)
	for _, e := range errs {
		t.problem(f.visible, e.line, e.col, "", e.msg)
	}
	for _, doc := range docs {
		if doc.root.Kind == yaml.MappingNode && isSettings(doc.value) {
			t.settingsDoc(f.visible, doc, func(fe fieldError) {
				line, col := doc.pos(fe.pointer, fe.key)
				t.problem(f.visible, line, col, "", fe.msg)
			})
			continue
		}
		code := docCode(doc.value)
		if code != "" {
			fr.Codes = append(fr.Codes, code)
			line, col := doc.pos("/metadata/code", false)
			t.codes = append(t.codes, codeSite{code: code, path: f.visible, line: line, col: col})
		}
		report := func(fe fieldError) {
			line, col := doc.pos(fe.pointer, fe.key)
			t.problem(f.visible, line, col, code, fe.msg)
		}
		if doc.root.Kind != yaml.MappingNode {
			report(fieldError{msg: "a definition document must be a mapping with apiVersion, kind, metadata and spec"})
			continue
		}
		schemaErrs, also := t.l.v.schema.validate(doc.value)
		for _, fe := range schemaErrs {
			report(fe)
		}
		// The semantic checks run on schema-invalid documents too, so that
		// one run reports every problem; what they find at or under a
		// field the schema already rejected is left out.
		n := &normalizer{v: t.l.v, tenant: t.res.Tenant, now: t.now, doc: doc, readScript: t.scriptReader(f.visible), secrets: t.recordedSecrets(),
			intervalUnit: reconciler.Duration(t.l.opts.IntervalUnit)}
		def, fes := n.normalize(doc.value)
		for _, fe := range fes {
			if len(schemaErrs) > 0 && (fe.pointer == "" || coveredBy(fe.pointer, schemaErrs)) {
				continue
			}
			report(fe)
		}
		if len(fes) == 0 && len(also) > 0 {
			// The schema refuses what tasksync's own checks let pass:
			// its word stands.
			for _, fe := range also {
				if !coveredBy(fe.pointer, schemaErrs) {
					report(fe)
				}
			}
			schemaErrs = append(schemaErrs, also...)
		}
		for _, fe := range n.warns {
			if !coveredBy(fe.pointer, schemaErrs) && !coveredBy(fe.pointer, fes) {
				line, col := doc.pos(fe.pointer, fe.key)
				t.warning(f.visible, line, col, code, fe.msg)
			}
		}
		if len(schemaErrs) > 0 || len(fes) > 0 {
			continue
		}
		def.Source = reconciler.Source{Path: f.visible, Line: doc.root.Line + doc.offset}
		t.defs = append(t.defs, def)
	}
}

// uniqueCodes reports every code used twice in the tenant, at each place,
// naming the other.
func (t *tenantLoad) uniqueCodes() {
	byCode := map[string][]codeSite{}
	for _, c := range t.codes {
		byCode[c.code] = append(byCode[c.code], c)
	}
	for code, sites := range byCode {
		if len(sites) < 2 {
			continue
		}
		for i, s := range sites {
			other := sites[0]
			if i == 0 {
				other = sites[1]
			}
			also := fmt.Sprintf("%s%s:%d:%d", t.l.opts.PathPrefix, other.path, other.line, other.col)
			if len(sites) > 2 {
				also += fmt.Sprintf(" (and %d more)", len(sites)-2)
			}
			t.problem(s.path, s.line, s.col, code, fmt.Sprintf(
				"metadata.code: duplicate code %q, also defined at %s; codes must be unique per tenant across kinds and files", code, also))
		}
	}
}

// symlinkProblem phrases an error resolving a symlink.
func symlinkProblem(err error) string {
	var out *outsideError
	if errors.As(err, &out) {
		return fmt.Sprintf("symlink resolves outside the tree (-> %s); refused, link to a path inside the tree instead", out.target)
	}
	return ioReason(err)
}

// scriptPath is the path in the tree of a python_script file, rel to the
// tenant directory: resolved from the directory's real place, so that a
// tenant directory that is a volume's link (acme -> ..data/acme) reads
// its own files, and not through the link, which the tenant's
// confinement does not cross.
func (t *tenantLoad) scriptPath(rel string) string {
	return t.tenantReal + "/" + rel
}

// scriptReader reads python_script files relative to the tenant directory,
// refusing paths that resolve outside it.
func (t *tenantLoad) scriptReader(defFile string) scriptReader {
	return func(rel string) ([]byte, error) {
		if t.recording {
			st, ok := t.scriptStamp(rel) // before the read, as the file's
			t.scripts = append(t.scripts, scriptDep{rel: rel, stamp: st})
			t.unsettled = t.unsettled || !ok || !st.settled(time.Now())
		}
		real, err := t.resolver.resolve(t.scriptPath(rel))
		if _, foreign := err.(*foreignError); foreign || err == nil && !within(real, t.tenantReal) && !within(real, t.tenantVisible) {
			return nil, fmt.Errorf("%q resolves outside the tenant directory %s%s/; scripts must live inside it", rel, t.l.opts.PathPrefix, t.tenantVisible)
		}
		if err != nil {
			if _, out := err.(*outsideError); out {
				return nil, fmt.Errorf("%q resolves outside the tree; scripts must live inside the tenant directory", rel)
			}
			return nil, fmt.Errorf("cannot read script %q (relative to the tenant directory %s%s/): %s", rel, t.l.opts.PathPrefix, t.tenantVisible, ioReason(err))
		}
		data, err := readLimited(t.fsys, real)
		if err != nil {
			return nil, fmt.Errorf("script %q: %w", rel, err)
		}
		return data, nil
	}
}

func within(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, dir+"/")
}

// tooLargeError is a file over the size limit.
type tooLargeError struct{ size int64 }

func (e *tooLargeError) Error() string {
	return fmt.Sprintf("file is %d bytes (%s); definition files are limited to %d bytes (%s), split it into several files",
		e.size, humanBytes(e.size), reconciler.MaxDefinitionFileBytes, humanBytes(reconciler.MaxDefinitionFileBytes))
}

// hardLinkError is a regular file with more than one hard link: it may be
// a second name of a file outside the tree, which is the same escape as a
// symlink out of the tree.
type hardLinkError struct{ links uint64 }

func (e *hardLinkError) Error() string {
	return fmt.Sprintf("the file has %d hard links; refused: a hard link can be a second name of a file outside the tree, as a symlink out of it would be; copy the file instead of linking it", e.links)
}

// readLimited reads a file of at most MaxDefinitionFileBytes, checking the
// size before reading and while reading, in case the file grows. Only a
// regular file with one link is read: the opened file is checked, not the
// name, since the name may have been swapped after the stat (DirFS opens
// without blocking, so a FIFO swapped in is refused here, not waited on).
func readLimited(fsys fs.FS, name string) ([]byte, error) {
	// Stat first: with a file system that opens blocking, opening a FIFO
	// or a device could block forever.
	if info, err := fs.Stat(fsys, name); err != nil {
		return nil, fmt.Errorf("cannot read file: %s", ioReason(err))
	} else if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("not a regular file (%s); definitions and scripts must be plain files", info.Mode().Type())
	}
	f, err := fsys.Open(name)
	if err != nil {
		return nil, fmt.Errorf("cannot read file: %s", ioReason(err))
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("cannot read file: %s", ioReason(err))
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("not a regular file (%s) when opened; it was replaced while being read, definitions and scripts must be plain files", info.Mode().Type())
	}
	if n := linkCount(info); n > 1 {
		return nil, &hardLinkError{links: n}
	}
	if info.Size() > reconciler.MaxDefinitionFileBytes {
		return nil, &tooLargeError{size: info.Size()}
	}
	// One read of the size stat reported, plus one byte to notice growth.
	buf := make([]byte, info.Size()+1)
	n, err := io.ReadFull(f, buf)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return nil, fmt.Errorf("cannot read file: %s", ioReason(err))
	}
	if n == len(buf) {
		// The file grew since stat: read the rest, still within the limit.
		rest, err := io.ReadAll(io.LimitReader(f, reconciler.MaxDefinitionFileBytes+1-int64(n)))
		if err != nil {
			return nil, fmt.Errorf("cannot read file: %s", ioReason(err))
		}
		buf = append(buf, rest...)
		if len(buf) > reconciler.MaxDefinitionFileBytes {
			return nil, &tooLargeError{size: int64(len(buf))}
		}
		return buf, nil
	}
	return buf[:n], nil
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}

// docCode returns metadata.code when it is a string.
func docCode(v any) string {
	m, _ := v.(map[string]any)
	md, _ := m["metadata"].(map[string]any)
	c, _ := md["code"].(string)
	return c
}

// coveredBy reports whether pointer is at, below or above a field one of
// errs is about: a semantic complaint there is most likely a consequence
// of the schema's (a step "without action" whose action key is misspelt),
// and is found again once that is fixed.
func coveredBy(pointer string, errs []fieldError) bool {
	for _, e := range errs {
		if pointer == e.pointer || strings.HasPrefix(pointer, e.pointer+"/") || strings.HasPrefix(e.pointer, pointer+"/") {
			return true
		}
	}
	return false
}
