package definitions

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/riveredge/tasksync/reconciler/expr"
)

// secretName is what NAME may be in ${secret:NAME}: it must also work as
// the suffix of the environment variable TASKSYNC_SECRET_<NAME>.
var secretName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)

// checkSecretRefs reports the first malformed ${...} in s. A literal "${"
// is written "$${".
func checkSecretRefs(s string) string {
	for i := 0; ; {
		j := strings.Index(s[i:], "${")
		if j < 0 {
			return ""
		}
		j += i
		if j > 0 && s[j-1] == '$' {
			i = j + 2 // "$${" is an escaped literal
			continue
		}
		end := strings.IndexByte(s[j:], '}')
		if end < 0 {
			return fmt.Sprintf("unterminated secret reference %q; write ${secret:NAME}", clip(s[j:]))
		}
		ref := s[j : j+end+1]
		name, ok := strings.CutPrefix(ref[2:len(ref)-1], "secret:")
		if !ok {
			return fmt.Sprintf("%q is not a secret reference; write ${secret:NAME}, or $${ for a literal ${", ref)
		}
		if name == "" {
			return fmt.Sprintf("empty secret name in %s; write ${secret:NAME}", ref)
		}
		if !secretName.MatchString(name) {
			return fmt.Sprintf("invalid secret name %q in %s; use letters, digits and _, starting with a letter or _", name, ref)
		}
		i = j + end + 1
	}
}

// SecretRefs returns the secret names s refers to, in order, repeated as
// often as they appear.
func SecretRefs(s string) []string {
	var names []string
	for i := 0; ; {
		j := strings.Index(s[i:], "${secret:")
		if j < 0 {
			return names
		}
		j += i
		end := strings.IndexByte(s[j:], '}')
		if end < 0 {
			return names
		}
		if j == 0 || s[j-1] != '$' {
			names = append(names, s[j+len("${secret:"):j+end])
		}
		i = j + end + 1
	}
}

// grants reports, when the loader checks grants, each secret that the
// strings inside v refer to and the tenant may not use, at the string
// that names it. v holds the fields whose secrets are resolved at
// execution (api_call url, headers, query, body; python_script args and
// env), keyed by field name.
func (n *normalizer) grants(p string, v any) {
	if n.secrets == nil {
		return
	}
	switch x := v.(type) {
	case string:
		seen := map[string]bool{}
		for _, name := range SecretRefs(x) {
			if seen[name] || !secretName.MatchString(name) {
				continue // malformed: checkSecretRefs reports it
			}
			seen[name] = true
			if err := n.secrets(n.tenant, name); err != nil {
				n.fail(p, "%v", err)
			}
		}
	case map[string]any:
		for k, e := range x {
			n.grants(p+"/"+escapeToken(k), e)
		}
	case map[string]string:
		for k, e := range x {
			n.grants(p+"/"+escapeToken(k), e)
		}
	case []any:
		for i, e := range x {
			n.grants(fmt.Sprintf("%s/%d", p, i), e)
		}
	case []string:
		for i, e := range x {
			n.grants(fmt.Sprintf("%s/%d", p, i), e)
		}
	}
}

// templateExprs returns the CEL expressions of the {{ }} templates in s.
func templateExprs(s string) ([]string, string) {
	parts, err := expr.ParseTemplate(s)
	if err != nil {
		return nil, err.Error()
	}
	var exprs []string
	for _, p := range parts {
		if p.Expr != "" {
			exprs = append(exprs, p.Expr)
		}
	}
	return exprs, ""
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:37] + "..."
	}
	return s
}
