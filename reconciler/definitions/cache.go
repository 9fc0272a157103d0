package definitions

import (
	"container/list"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"hash/fnv"
	"io/fs"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/riveredge/tasksync/reconciler"
)

// racyWindow is how recent a file's last change may be for its parsed
// result to be kept. A file's timestamps tick with the kernel's coarse
// clock (a few milliseconds), so a file rewritten within the same tick
// as it was read, at the same size, keeps its stamp: a result read then is
// not kept, and the file is read again next time (as git treats a
// "racily clean" entry).
const racyWindow = time.Second

// DefaultKeepParsed is how many tenants' parsed results a loader that
// reuses them keeps by default (Options.KeepParsed). A tenant of ten
// files holds about 19 KiB of results, so 256 tenants hold under 5 MiB
// whatever the size of the tree (a stripped tenant about 2.3 KiB:
// BenchmarkRetainedHeap); the tenants a load reads are those that
// changed (an edit, a file whose lifetime ended), and those edited at any
// one time are far fewer, except in a bulk change, whose files are new
// and parsed anyway. Parsing again a tenant loaded longer ago costs about
// a millisecond of CPU per ten files.
const DefaultKeepParsed = 256

// fileCache keeps, per definition file, what loading it gave and what
// that was made from, so that a load re-parses only files whose inputs
// changed. A file's result is reused only when all of these are as they
// were:
//
//   - the file's stamp: the path it resolves to, device, inode, link
//     count, size, mode, mtime and ctime. Any write, rename over it,
//     chmod, link or mtime-preserving copy changes the ctime or the inode,
//     which no user can set back;
//   - the stamps of the script files it read, resolved again;
//   - the answer to each secret grant it asked (Options.Secrets), asked
//     again;
//   - the clock: a result is dropped at the first `at` of the file that
//     was still ahead when it was read (its "has passed" warning), and in
//     any case after Options.Reuse to twice that, at a point of its own
//     per tenant, so that the re-parses of a large tree spread over the
//     resyncs, and the files of a tenant parsed together are parsed again
//     together, in one load of the tenant (a stripped tenant's load parses
//     all its files).
//
// Entries are kept per tenant; a full load of a tenant replaces its
// entries with those of the files it still has, and Tenants drops the
// tenants no longer in the tree.
//
// The parsed results (fileOutcome: the definitions, problems, codes) are
// most of an entry's memory, and only a load reads them; the resync asks
// TenantStamp of every tenant, which reads the rest. So the results are
// kept for the keepParsed tenants loaded last only (an LRU over tenants,
// Options.KeepParsed); the entries of every other tenant are replaced by
// stripped copies, without their results (out nil). A stripped entry
// still makes the tenant's stamp (TenantStamp checks it as it checks a
// full one), but a load cannot reuse it: the file is parsed again, and
// when what it was made from is as the stripped entry says, the new entry
// keeps its id, so that the tenant's stamp stays as it was: a parse of
// the same file, scripts and grant answers before the entry's until gives
// the result the entry was stripped of, which the stamp stood for, as
// reusing it would have (both overlook what only the clock moves before
// until: a warning of a daylight saving change ahead). The tenant was
// read and diffed in that load all the same; the stamp kept only lets
// the next resyncs skip it.
type fileCache struct {
	reuse      time.Duration
	keepParsed int // tenants whose entries keep their results; 0: none

	mu      sync.Mutex
	tenants map[string]*cachedTenant
	recent  list.List // names of the tenants whose entries hold results, the last loaded first
}

// cachedTenant is a tenant's entries, by visible path. The map is not
// changed once stored: stripping it stores a new one.
type cachedTenant struct {
	files  map[string]*cachedFile
	recent *list.Element // in fileCache.recent; nil when files are stripped
}

// cachedFile is one file's result and what it was made from. It is not
// changed once stored.
type cachedFile struct {
	id    uint64 // unique among the entries of this process (entryIDs), but kept by a re-parse of a stripped entry
	stamp stamp
	deps  *fileDeps    // nil when the file read no script and asked no grant
	until int64        // Unix nanoseconds: the entry is not reused from then on
	out   *fileOutcome // nil in a stripped entry
}

// fileDeps is what a file's result was made from besides the file: the
// script files it read, the grants it asked. Most files have none, so it
// is kept apart, and only when there is some.
type fileDeps struct {
	scripts []scriptDep
	grants  []grantAnswer
}

// scripts are the script files the entry's file read.
func (e *cachedFile) scripts() []scriptDep {
	if e.deps == nil {
		return nil
	}
	return e.deps.scripts
}

// grants are the grants the entry's file asked, with their answers.
func (e *cachedFile) grants() []grantAnswer {
	if e.deps == nil {
		return nil
	}
	return e.deps.grants
}

// newEntry is the entry of the file at path visible, parsed now into out
// from a file of stamp st and the scripts and grants given. prev, when
// not nil, is the file's stripped entry, which checked out as reusable
// before the parse: when the parse was made from the same, the new entry
// keeps its id (the result is the one prev was stripped of).
func newEntry(visible string, prev *cachedFile, st stamp, scripts []scriptDep, grants []grantAnswer, until time.Time, out *fileOutcome) *cachedFile {
	if st.real == visible {
		st.real = visible // one string for the key and the stamp
	}
	e := &cachedFile{stamp: st, until: until.UnixNano(), out: out}
	if len(scripts) > 0 || len(grants) > 0 {
		e.deps = &fileDeps{scripts: tight(scripts), grants: tight(grants)}
	}
	if prev != nil && prev.stamp == st && slices.Equal(prev.scripts(), e.scripts()) && slices.Equal(prev.grants(), e.grants()) {
		e.id = prev.id
	} else {
		e.id = entryIDs.Add(1)
	}
	return e
}

// tight is s in an array of its length, so that a kept entry holds no
// spare capacity from the appends that made it.
func tight[S ~[]E, E any](s S) S {
	if len(s) == 0 {
		return nil
	}
	if cap(s) == len(s) {
		return s
	}
	return slices.Clone(s)
}

// stripped is a copy of e without its parsed result.
func (e *cachedFile) stripped() *cachedFile {
	if e.out == nil {
		return e
	}
	s := *e
	s.out = nil
	return &s
}

// stamp is what the file system says of a path; equal stamps mean an
// unchanged file. err is set instead when the path could not be resolved
// or stat'ed (a missing script is a state too).
type stamp struct {
	real                 string
	dev, ino, nlink      uint64
	size                 int64
	mode                 fs.FileMode
	mtimeNsec, ctimeNsec int64
	err                  string
}

// scriptDep is a script file a definition file read, by the name it gave.
type scriptDep struct {
	rel   string
	stamp stamp
}

// grantAnswer is a secret grant asked while loading a file, and the answer.
type grantAnswer struct {
	tenant, name, answer string
}

// fileOutcome is what loading one file adds to its tenant.
type fileOutcome struct {
	file      reconciler.TreeFile
	problems  []reconciler.Problem
	warnings  []reconciler.Problem
	reported  int // problems counted against the file's limit
	failed    bool
	readError bool
	codes     []codeSite
	settings  []settingsSite
	defs      []reconciler.Definition
}

// stampOf stamps the path name of fsys; ok is false when the file system
// gives no inode and change time, so that nothing may be cached.
func stampOf(fsys fs.FS, name string) (s stamp, ok bool) {
	info, err := fs.Stat(fsys, name)
	if err != nil {
		return stamp{real: name, err: ioReason(err)}, true
	}
	st, isUnix := info.Sys().(*syscall.Stat_t)
	if !isUnix {
		return stamp{}, false
	}
	return stamp{
		real: name, dev: uint64(st.Dev), ino: st.Ino, nlink: uint64(st.Nlink), size: st.Size, mode: info.Mode(),
		mtimeNsec: st.Mtim.Nano(), ctimeNsec: st.Ctim.Nano(),
	}, true
}

// settled reports whether the stamp's file last changed at least
// racyWindow before at, so that a later change cannot share its stamp.
func (s stamp) settled(at time.Time) bool {
	limit := at.Add(-racyWindow).UnixNano()
	return s.err != "" || max(s.mtimeNsec, s.ctimeNsec) < limit
}

// forTenant returns the entries stored for a tenant; the map must not be
// changed.
func (c *fileCache) forTenant(tenant string) map[string]*cachedFile {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ct := c.tenants[tenant]; ct != nil {
		return ct.files
	}
	return nil
}

// store replaces a tenant's entries, which hold their results: the tenant
// becomes the last loaded, and the entries of the tenant loaded the
// longest ago are stripped when more than keepParsed tenants hold theirs.
func (c *fileCache) store(tenant string, files map[string]*cachedFile) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tenants == nil {
		c.tenants = map[string]*cachedTenant{}
	}
	ct := c.tenants[tenant]
	if len(files) == 0 {
		if ct != nil {
			c.drop(tenant, ct)
		}
		return
	}
	if ct == nil {
		ct = &cachedTenant{}
		c.tenants[tenant] = ct
	}
	ct.files = files
	if ct.recent != nil {
		c.recent.MoveToFront(ct.recent)
	} else {
		ct.recent = c.recent.PushFront(tenant)
	}
	for c.recent.Len() > c.keepParsed {
		oldest := c.tenants[c.recent.Remove(c.recent.Back()).(string)]
		oldest.recent = nil
		oldest.files = strip(oldest.files)
	}
}

// strip returns stripped copies of files.
func strip(files map[string]*cachedFile) map[string]*cachedFile {
	out := make(map[string]*cachedFile, len(files))
	for path, e := range files {
		out[path] = e.stripped()
	}
	return out
}

// drop forgets a tenant's entries; c.mu is held.
func (c *fileCache) drop(tenant string, ct *cachedTenant) {
	if ct.recent != nil {
		c.recent.Remove(ct.recent)
	}
	delete(c.tenants, tenant)
}

// keepOnly drops the entries of tenants not named.
func (c *fileCache) keepOnly(tenants []string) {
	keep := make(map[string]bool, len(tenants))
	for _, t := range tenants {
		keep[t] = true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for t, ct := range c.tenants {
		if !keep[t] {
			c.drop(t, ct)
		}
	}
}

// forget drops every entry.
func (c *fileCache) forget() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tenants = nil
	c.recent.Init()
}

// lifetime is how long a file's result may be reused at most: between
// reuse and twice that, at a point fixed per tenant.
func (c *fileCache) lifetime(tenant string) time.Duration {
	h := fnv.New32a()
	h.Write([]byte(tenant))
	return c.reuse + time.Duration(uint64(c.reuse)*uint64(h.Sum32())>>32)
}

// Forget drops every parsed result the loader keeps, so that the next
// load parses every file again (SIGHUP in the daemon).
func (l *Loader) Forget() {
	if l.cache != nil {
		l.cache.forget()
	}
}

// FileStats counts the definition files this loader parsed and those
// whose parsed result it reused since it was made (or found reusable, by
// TenantStamp).
func (l *Loader) FileStats() (parsed, reused int64) {
	return l.parsed.Load(), l.reused.Load()
}

// reusable returns the stored entry of f when nothing it was made from
// changed, or nil. A stripped entry (out nil) is returned as well: it
// makes the tenant's stamp, but a load parses the file again.
func (t *tenantLoad) reusable(f fileRef) *cachedFile {
	e := t.prev[f.visible]
	if e == nil || e.stamp.real != f.real || t.now.UnixNano() >= e.until {
		return nil
	}
	if st, ok := stampOf(t.fsys, f.real); !ok || st != e.stamp {
		return nil
	}
	for _, d := range e.scripts() {
		if st, ok := t.scriptStamp(d.rel); !ok || st != d.stamp {
			return nil
		}
	}
	for _, g := range e.grants() {
		if answerOf(t.l.opts.Secrets(g.tenant, g.name)) != g.answer {
			return nil
		}
	}
	return e
}

// scriptStamp stamps the script file rel (relative to the tenant
// directory) as scriptReader would resolve it.
func (t *tenantLoad) scriptStamp(rel string) (stamp, bool) {
	real, err := t.resolver.resolve(t.scriptPath(rel))
	if err != nil {
		return stamp{real: rel, err: err.Error()}, true
	}
	return stampOf(t.fsys, real)
}

// answerOf is a grant's answer as stored: "" for granted.
func answerOf(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// recordedSecrets is the grant check of a file being parsed for the
// cache: it asks Options.Secrets and records each answer.
func (t *tenantLoad) recordedSecrets() func(tenant, name string) error {
	check := t.l.opts.Secrets
	if check == nil || !t.recording {
		return check
	}
	return func(tenant, name string) error {
		err := check(tenant, name)
		t.grants = append(t.grants, grantAnswer{tenant: tenant, name: name, answer: answerOf(err)})
		return err
	}
}

// until is when a result parsed now must be parsed again: after the
// tenant's lifetime, or at the first of the file's one-shots still ahead.
func (t *tenantLoad) until() time.Time {
	until := t.now.Add(t.l.cache.lifetime(t.tenantVisible))
	for _, d := range t.defs {
		if at := d.Spec.Trigger.At; at != nil && at.After(t.now) && at.Before(until) {
			until = *at
		}
	}
	return until
}

// outcome is what the file parsed into t, a tenantLoad of that file
// alone, adds to its tenant.
func (t *tenantLoad) outcome(path string) *fileOutcome {
	return &fileOutcome{
		file: t.res.Files[0], problems: t.res.Problems, warnings: t.res.Warnings,
		reported: t.perFile[path], failed: t.failed[path], readError: t.res.ReadError,
		codes: t.codes, settings: t.settings, defs: t.defs,
	}
}

// add adds one file's outcome to the tenant. The outcome may be a stored
// one: it is copied from, never changed.
func (t *tenantLoad) add(path string, o *fileOutcome) {
	t.res.Files = append(t.res.Files, o.file)
	t.res.Problems = append(t.res.Problems, o.problems...)
	t.res.Warnings = append(t.res.Warnings, o.warnings...)
	if o.reported > 0 {
		if t.perFile == nil {
			t.perFile = map[string]int{}
		}
		t.perFile[path] = o.reported
	}
	if o.failed {
		if t.failed == nil {
			t.failed = map[string]bool{}
		}
		t.failed[path] = true
	}
	if o.readError {
		t.res.ReadError = true
	}
	t.codes = append(t.codes, o.codes...)
	t.settings = append(t.settings, o.settings...)
	t.defs = append(t.defs, o.defs...)
}

// entryIDs numbers the cached entries: an entry is never changed once
// stored, so its number stands for everything it was made from.
var entryIDs atomic.Uint64

// TenantStamp returns the stamp (reconciler.TenantTree.Stamp) a load of
// the tenant would have now, without loading it: it walks the tenant
// directory and checks every file's stored entry as a load would (its
// stamp, its scripts', its grants' answers, its lifetime), and parses
// nothing. It returns "" when some file has no reusable entry: a load
// must read the tenant. A tenant whose entries were stripped of their
// results (fileCache) has its stamp all the same: a load of it would
// parse its files again into the same results, and keep their ids.
//
// The daemon's resync compares it with the stamp of the tree it last
// applied, and skips a tenant whose stamp (and applied version) did not
// move: a change no watcher reported changes a file's stamp (a write
// moves its ctime, which no user can set back), so the next resync reads
// it all the same.
func (l *Loader) TenantStamp(tenant string) string {
	if l.cache == nil {
		return ""
	}
	prev := l.cache.forTenant(tenant)
	if len(prev) == 0 {
		return ""
	}
	root, err := l.current()
	if err != nil {
		return ""
	}
	tenantReal, w, err := l.tenantWalker(root, tenant)
	if err != nil {
		return ""
	}
	w.walk(tenant, tenantReal, 0)
	if w.readErr || len(w.files) != len(prev) {
		return ""
	}
	slices.SortFunc(w.files, func(a, b fileRef) int { return strings.Compare(a.visible, b.visible) })
	tl := &tenantLoad{l: l, fsys: root.fsys, tenantVisible: tenant, tenantReal: tenantReal, resolver: w.res, now: l.opts.Now(), prev: prev}
	for _, f := range w.files {
		if tl.reusable(f) == nil {
			return ""
		}
	}
	if l.moved(root) {
		return "" // the tree's link moved during the walk: read it
	}
	stamp := tenantStamp(tenantReal, w, prev)
	if stamp != "" {
		l.reused.Add(int64(len(w.files))) // as good as loaded from what is kept
	}
	return stamp
}

// tenantStamp hashes what a tenant's load is made of: where its directory
// leads, the problems of its walk, and each file found with the stored
// result it was (or would be) loaded from. "" when a file has none.
func tenantStamp(tenantReal string, w *walker, entries map[string]*cachedFile) string {
	h := sha256.New()
	var num [8]byte
	str := func(s string) {
		binary.LittleEndian.PutUint64(num[:], uint64(len(s)))
		h.Write(num[:])
		h.Write([]byte(s))
	}
	str(tenantReal)
	for _, p := range w.problems {
		str(p.path)
		str(p.msg)
	}
	str("") // the end of the problems
	for _, f := range w.files {
		e := entries[f.visible]
		if e == nil {
			return ""
		}
		str(f.visible)
		str(f.real)
		binary.LittleEndian.PutUint64(num[:], e.id)
		h.Write(num[:])
	}
	return hex.EncodeToString(h.Sum(nil))
}
