package watch

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/riveredge/tasksync/reconciler"
)

// Change is one debounced batch of events: the domain's TreeChange, which
// the controller consumes.
type Change = reconciler.TreeChange

// Options tune a Watcher.
type Options struct {
	// Quiet is how long the tree must be still before a change is sent;
	// default 200ms. A checkout or an rsync of many files is one change.
	Quiet time.Duration
	// MaxDelay bounds how long a stream of events can defer a change;
	// default 2s.
	MaxDelay time.Duration
	Logger   *slog.Logger
	// Ready, if set, is called once the tree is being watched.
	Ready func()
	// Recheck is how often the tree's path is resolved again, in case
	// the event of a link's swap was lost; default 10s.
	Recheck time.Duration
}

// Watcher watches one tree, recursively: directories created later are
// watched too.
//
// The tree's path may be, or lie under, a symlink that is swapped to a new
// directory (git-sync's ROOT/current -> .worktrees/<hash>, renamed over by
// a new link at each sync): the watcher watches the directory the path
// resolves to, and the directories holding the links on the way, where
// the swap is an event. When the path resolves elsewhere (a swap, or a
// link that leads nowhere for a moment), it watches the new directory
// and sends a change of the whole tree. It checks the path again every
// Options.Recheck too, in case an event was lost.
type Watcher struct {
	root string
	opts Options
}

// New returns a watcher of the tree at root.
func New(root string, opts Options) *Watcher {
	if opts.Quiet <= 0 {
		opts.Quiet = 200 * time.Millisecond
	}
	if opts.MaxDelay <= 0 {
		opts.MaxDelay = 2 * time.Second
	}
	if opts.Recheck <= 0 {
		opts.Recheck = 10 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if abs, err := filepath.Abs(root); err == nil {
		root = abs
	}
	return &Watcher{root: filepath.Clean(root), opts: opts}
}

// Run watches until ctx ends, sending changes on out. It returns only when
// ctx ends or the tree cannot be watched at all.
func (w *Watcher) Run(ctx context.Context, out chan<- Change) error {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	defer fw.Close()
	t := &tracker{w: w, fw: fw, watched: map[string]bool{}, links: map[string]bool{}}
	t.relink()
	if w.opts.Ready != nil {
		w.opts.Ready()
	}
	recheck := time.NewTicker(w.opts.Recheck)
	defer recheck.Stop()

	var pending Change
	tenants := map[string]bool{}
	var first time.Time
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	flush := func() {
		c := Change{Full: pending.Full}
		for t := range tenants {
			c.Tenants = append(c.Tenants, t)
		}
		slices.Sort(c.Tenants)
		wait := time.NewTimer(w.opts.MaxDelay)
		defer wait.Stop()
		select {
		case out <- c:
			pending, first = Change{}, time.Time{}
			clear(tenants)
		case <-wait.C:
			// Nobody took it (this replica does not lead, or a long
			// reconcile is under way): keep coalescing, offer it again.
			timer.Reset(w.opts.Quiet)
		case <-ctx.Done():
		}
	}
	note := func() {
		now := time.Now()
		if first.IsZero() {
			first = now
		}
		wait := min(w.opts.Quiet, first.Add(w.opts.MaxDelay).Sub(now))
		timer.Reset(max(wait, 0))
	}
	// relinked checks where the tree's path leads; a move is a change of
	// the whole tree.
	relinked := func() {
		if t.relink() {
			pending.Full = true
			note()
		}
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-fw.Events:
			if !ok {
				return errors.New("watcher closed")
			}
			inLinkDir := t.links[filepath.Dir(ev.Name)] || t.links[ev.Name]
			if inLinkDir || ev.Name == t.real {
				// A link on the way to the tree changed, or the tree
				// itself went: look where the path leads now.
				relinked()
			}
			rel, err := filepath.Rel(t.real, ev.Name)
			switch {
			case t.real == "" || err != nil || strings.HasPrefix(rel, ".."):
				if !inLinkDir {
					pending.Full = true // cannot tell
					note()
				}
				continue
			case rel == ".":
				pending.Full = true
				note()
				continue
			}
			top, _, _ := strings.Cut(filepath.ToSlash(rel), "/")
			if strings.HasPrefix(top, ".") || strings.HasPrefix(top, "_") {
				// The tree's own hidden entries: a volume swap of the
				// whole tree (..data) — look at everything again.
				pending.Full = true
			} else {
				tenants[top] = true
			}
			if ev.Has(fsnotify.Create) {
				if info, err := os.Stat(ev.Name); err == nil && info.IsDir() {
					t.addTree(ev.Name)
				}
			}
			note()
		case err, ok := <-fw.Errors:
			if !ok {
				return errors.New("watcher closed")
			}
			w.opts.Logger.Warn("watch: events lost, rescanning the whole tree", "err", err)
			t.relink()
			pending.Full = true
			note()
		case <-recheck.C:
			relinked()
		case <-timer.C:
			flush()
		}
	}
}

// tracker keeps the watches of one Run: the tree where its path resolves,
// and the directories of the links on the way.
type tracker struct {
	w  *Watcher
	fw *fsnotify.Watcher
	// real is the directory the path resolved to last; "" when it led
	// nowhere.
	real string
	// links are the directories that hold a link on the way.
	links map[string]bool
	// watched are the directories watched, for the tree and the links.
	watched map[string]bool
}

// relink resolves the tree's path again and, when it leads elsewhere than
// it did, moves the watches there; it reports whether it did.
func (t *tracker) relink() bool {
	real, links, err := resolveLinks(t.w.root)
	if err != nil {
		real = ""
	}
	if real == t.real && maps.Equal(links, t.links) {
		return false
	}
	moved := real != t.real
	if err != nil && moved {
		t.w.opts.Logger.Warn("watch: the tree's path leads nowhere; watching its links until it does", "dir", t.w.root, "err", err)
	} else if moved && t.real != "" {
		t.w.opts.Logger.Info("watch: the tree's path leads to another directory (a checkout or a volume swapped its link)", "dir", t.w.root, "now", real)
	}
	for d := range t.watched {
		_ = t.fw.Remove(d) // a directory deleted is no longer watched anyway
	}
	clear(t.watched)
	t.real, t.links = real, links
	for d := range links {
		t.add(d)
	}
	if real != "" {
		t.addTree(real)
	}
	return moved
}

func (t *tracker) add(dir string) {
	if t.watched[dir] {
		return
	}
	if err := t.fw.Add(dir); err != nil {
		t.w.opts.Logger.Warn("watch: cannot watch a directory", "dir", dir, "err", err)
		return
	}
	t.watched[dir] = true
}

// addTree watches dir and every directory below it, hidden volume
// directories included (their swap is an event in their parent).
func (t *tracker) addTree(dir string) {
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // unreadable parts are the reconciler's to report
		}
		if d.IsDir() {
			t.add(p)
		}
		return nil
	})
	if err != nil {
		t.w.opts.Logger.Warn("watch: cannot walk the tree", "dir", dir, "err", err)
	}
}

// maxLinkHops bounds the links followed to resolve the tree's path, as
// Linux's MAXSYMLINKS.
const maxLinkHops = 40

// resolveLinks resolves the absolute path p as filepath.EvalSymlinks does
// and returns, besides, the directories that hold a link on the way, and
// when p leads nowhere, the last directory reached (where the missing
// entry would appear), so that they can be watched.
func resolveLinks(p string) (string, map[string]bool, error) {
	dirs := map[string]bool{}
	rest := strings.Split(p, string(filepath.Separator))
	cur := string(filepath.Separator)
	hops := 0
	for len(rest) > 0 {
		part := rest[0]
		rest = rest[1:]
		switch part {
		case "", ".":
			continue
		case "..":
			cur = filepath.Dir(cur)
			continue
		}
		next := filepath.Join(cur, part)
		info, err := os.Lstat(next)
		if err != nil {
			if len(dirs) > 0 {
				dirs[cur] = true
			}
			return "", dirs, err
		}
		if info.Mode()&fs.ModeSymlink == 0 {
			if len(rest) > 0 && !info.IsDir() {
				return "", dirs, &fs.PathError{Op: "resolve", Path: next, Err: syscall.ENOTDIR}
			}
			cur = next
			continue
		}
		if hops++; hops > maxLinkHops {
			return "", dirs, &fs.PathError{Op: "resolve", Path: p, Err: syscall.ELOOP}
		}
		target, err := os.Readlink(next)
		if err != nil {
			return "", dirs, err
		}
		dirs[cur] = true
		if filepath.IsAbs(target) {
			cur = string(filepath.Separator)
		}
		rest = append(strings.Split(target, string(filepath.Separator)), rest...)
	}
	return cur, dirs, nil
}
