package webui

import (
	"fmt"
	"html/template"
	"net/url"
	"strconv"
	"time"
)

// tone is the colour class of a state word; every badge also says the
// word, so colour is never the only sign.
type tone string

const (
	toneOK      tone = "ok"
	toneBad     tone = "bad"
	toneWarn    tone = "warn"
	toneInfo    tone = "info"
	toneNeutral tone = "neutral"
)

// tones maps the API's state words to their colours.
var tones = map[string]tone{
	"success": toneOK, "succeeded": toneOK, "synced": toneOK, "active": toneOK, "fired": toneOK, "completed": toneOK, "leader": toneOK,
	"error": toneBad, "failed": toneBad, "rejected": toneBad, "missed": toneBad, "timed_out": toneBad,
	"invalid": toneWarn, "pending": toneWarn, "due": toneWarn, "warning": toneWarn, "held": toneWarn,
	"running": toneInfo, "scheduled": toneInfo,
	"inactive": toneNeutral, "retired": toneNeutral, "expired": toneNeutral, "skipped": toneNeutral, "follower": toneNeutral,
}

// symbols give each tone a shape besides its colour.
var symbols = map[tone]string{toneOK: "✓", toneBad: "✕", toneWarn: "!", toneInfo: "●", toneNeutral: "–"}

// labelled is a badge coloured as Word that says Text.
type labelled struct {
	Word string
	Text string
}

func toneOf(word string) tone {
	if t, ok := tones[word]; ok {
		return t
	}
	return toneNeutral
}

func (u *ui) funcs() template.FuncMap {
	return template.FuncMap{
		"tone":     func(word string) string { return string(toneOf(word)) },
		"symbol":   func(word string) string { return symbols[toneOf(word)] },
		"rel":      func(t time.Time) string { return relative(t, u.opts.Now()) },
		"abs":      func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
		"iso":      func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
		"local":    func(t time.Time) string { return t.Format("Mon 2006-01-02 15:04 MST (-07:00)") },
		"utc":      func(t time.Time) string { return t.UTC().Format("Mon 2006-01-02 15:04 UTC") },
		"ms":       duration,
		"deref":    func(p *time.Time) time.Time { return *p },
		"derefInt": func(p *int64) int64 { return *p },
		"describe": describeTrigger,
		"activeWord": func(active bool) string {
			if active {
				return "active"
			}
			return "inactive"
		},
		"tenantURL": func(t string) string { return uiPath("t", t) },
		"errorsURL": func(t string) string { return uiPath("t", t, "errors") },
		"defURL":    func(t, code string) string { return uiPath("t", t, "d", code) },
		"uuidURL":   func(uuid string) string { return uiPath("d", uuid) },
		"runsURL":   func(t string) string { return uiPath("t", t, "runs") },
		"short":     short,
		"filterURL": func(t, k, v string) string { return uiPath("t", t) + "?" + url.Values{k: {v}}.Encode() },
		"list":      func(s ...string) []string { return s },
		"attempt": func(n int) string {
			if n == 0 {
				return "first attempt"
			}
			return "retry " + strconv.Itoa(n)
		},
		"label": func(word, text string) labelled { return labelled{Word: word, Text: text} },
		"plural": func(n int, one, many string) string {
			if n == 1 {
				return strconv.Itoa(n) + " " + one
			}
			return strconv.Itoa(n) + " " + many
		},
	}
}

// relative says how far t is from now, in the largest whole unit.
func relative(t, now time.Time) string {
	d := now.Sub(t)
	future := d < 0
	if future {
		d = -d
	}
	var s string
	switch {
	case d < 5*time.Second:
		return "just now"
	case d < time.Minute:
		s = fmt.Sprintf("%d s", int(d.Seconds()))
	case d < time.Hour:
		s = fmt.Sprintf("%d min", int(d.Minutes()))
	case d < 48*time.Hour:
		s = fmt.Sprintf("%d h", int(d.Hours()))
	default:
		s = fmt.Sprintf("%d days", int(d.Hours()/24))
	}
	if future {
		return "in " + s
	}
	return s + " ago"
}

// duration shows milliseconds as a short duration.
func duration(ms int64) string {
	d := time.Duration(ms) * time.Millisecond
	switch {
	case d < time.Second:
		return fmt.Sprintf("%d ms", ms)
	case d < time.Minute:
		return fmt.Sprintf("%.1f s", d.Seconds())
	}
	return d.Round(time.Second).String()
}

// short is the first 12 characters of a commit hash or uuid, as git
// shortens one; the page shows the whole in its title.
func short(s string) string {
	if len(s) <= 12 {
		return s
	}
	return s[:12]
}
