package watch

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
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
}

// Watcher watches one tree, recursively: directories created later are
// watched too.
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
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
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
	w.addTree(fw, w.root)
	if w.opts.Ready != nil {
		w.opts.Ready()
	}

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
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-fw.Events:
			if !ok {
				return errors.New("watcher closed")
			}
			rel, err := filepath.Rel(w.root, ev.Name)
			if err != nil || rel == "." || strings.HasPrefix(rel, "..") {
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
					w.addTree(fw, ev.Name)
				}
			}
			note()
		case err, ok := <-fw.Errors:
			if !ok {
				return errors.New("watcher closed")
			}
			w.opts.Logger.Warn("watch: events lost, rescanning the whole tree", "err", err)
			pending.Full = true
			note()
		case <-timer.C:
			flush()
		}
	}
}

// addTree watches dir and every directory below it, hidden volume
// directories included (their swap is an event in their parent).
func (w *Watcher) addTree(fw *fsnotify.Watcher, dir string) {
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // unreadable parts are the reconciler's to report
		}
		if d.IsDir() {
			if err := fw.Add(p); err != nil {
				w.opts.Logger.Warn("watch: cannot watch a directory", "dir", p, "err", err)
			}
		}
		return nil
	})
	if err != nil {
		w.opts.Logger.Warn("watch: cannot walk the tree", "dir", dir, "err", err)
	}
}
