package statusapi

import (
	"net/http"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/riveredge/tasksync/reconciler"
)

// The rules of a tenant's code (a directory's name) and of a
// definition's, as the validator applies them: a path value outside them
// names nothing that can exist.
var (
	tenantPattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	codePattern   = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,49}$`)
)

// pathNames reports whether the tenant and code of the request's path
// (those it has) can name a tenant and a definition. One that cannot is
// answered as one that does not exist, with the same 404: it is never
// sent to the store, and nothing tells the two apart.
func pathNames(r *http.Request) bool {
	if t := r.PathValue("tenant"); t != "" && !tenantPattern.MatchString(t) {
		return false
	}
	if c := r.PathValue("code"); c != "" && !codePattern.MatchString(c) {
		return false
	}
	return true
}

// found answers, for a path that cannot name anything (pathNames), the
// 404 of a missing what, and returns false.
func (a *api) found(w http.ResponseWriter, r *http.Request, what string) bool {
	if pathNames(r) {
		return true
	}
	a.fail(w, reconciler.ErrNotFound, what)
	return false
}

// plainText reports whether v is text the store can hold: valid UTF-8
// without NUL.
func plainText(v string) bool {
	return utf8.ValidString(v) && !strings.ContainsRune(v, 0)
}
