package statusapi

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// checkParams answers 400 and returns false when the request has a query
// parameter that is not one of allowed, or one given twice: a filter the
// API does not know is never silently ignored.
func checkParams(w http.ResponseWriter, r *http.Request, allowed []string) bool {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		writeError(w, http.StatusBadRequest, "the query string cannot be parsed: "+err.Error())
		return false
	}
	names := make([]string, 0, len(q))
	for name := range q {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		switch {
		case !slices.Contains(allowed, name) && len(allowed) == 0:
			badParam(w, name, "unknown query parameter; this endpoint takes none")
			return false
		case !slices.Contains(allowed, name):
			badParam(w, name, "unknown query parameter; this endpoint takes "+strings.Join(allowed, ", "))
			return false
		case len(q[name]) > 1:
			badParam(w, name, "given more than once")
			return false
		case !plainText(q[name][0]):
			badParam(w, name, "must be UTF-8 text without NUL characters")
			return false
		}
	}
	return true
}

// enumParam sets *dst to the value of the parameter name, which must be
// one of values; absent, it leaves *dst alone.
func enumParam[T ~string](w http.ResponseWriter, q url.Values, name string, dst *T, values ...T) bool {
	v, given := q[name]
	if !given {
		return true
	}
	if !slices.Contains(values, T(v[0])) {
		words := make([]string, len(values))
		for i, x := range values {
			words[i] = string(x)
		}
		badParam(w, name, "must be one of "+strings.Join(words, ", ")+"; got "+shown(v[0]))
		return false
	}
	*dst = T(v[0])
	return true
}

// boolParam sets *dst from the parameter name, true or false.
func boolParam(w http.ResponseWriter, q url.Values, name string, dst **bool) bool {
	v, given := q[name]
	if !given {
		return true
	}
	switch v[0] {
	case "true", "false":
		b := v[0] == "true"
		*dst = &b
		return true
	}
	badParam(w, name, "must be true or false; got "+shown(v[0]))
	return false
}

// limitParam sets *dst from the page size limit, 1 to maxLimit.
func limitParam(w http.ResponseWriter, q url.Values, dst *int) bool {
	v, given := q["limit"]
	if !given {
		return true
	}
	n, err := strconv.Atoi(v[0])
	if err != nil || n < 1 || n > maxLimit {
		badParam(w, "limit", "must be a whole number from 1 to "+strconv.Itoa(maxLimit)+"; got "+shown(v[0]))
		return false
	}
	*dst = n
	return true
}

// runCursorParam sets *dst from the cursor of a run list: the id of the
// last run of the previous page.
func runCursorParam(w http.ResponseWriter, q url.Values, dst *int64) bool {
	v, given := q["cursor"]
	if !given {
		return true
	}
	n, err := strconv.ParseInt(v[0], 10, 64)
	if err != nil || n < 1 {
		badParam(w, "cursor", "invalid cursor; pass the next_cursor of the previous page")
		return false
	}
	*dst = n
	return true
}

// timeParam sets *dst from the parameter name, an RFC 3339 time.
func timeParam(w http.ResponseWriter, q url.Values, name string, dst *time.Time) bool {
	v, given := q[name]
	if !given {
		return true
	}
	t, err := time.Parse(time.RFC3339Nano, v[0])
	if err != nil {
		badParam(w, name, "must be an RFC 3339 time such as 2026-01-02T15:04:05Z; got "+shown(v[0]))
		return false
	}
	*dst = t
	return true
}

// shown quotes a value for an error message, cut to 64 bytes.
func shown(v string) string {
	if len(v) > 64 {
		return strconv.Quote(v[:64]) + "..."
	}
	return strconv.Quote(v)
}
