package reconciler

import (
	"fmt"
	"strings"
)

// GitHubAnnotation is p as a GitHub Actions workflow command,
// "::error file=PATH,line=N,col=N::MESSAGE" ("::warning" for a
// warning), which the run shows on the file's line in the pull request.
// The path and message are escaped as the runner's toolkit escapes them,
// so that no file name or message can end the command early or start
// another one.
//
// Under strict (validate --strict) a warning fails the job as an error
// does, so it is annotated as an error whose message starts "warning: ".
func (p Problem) GitHubAnnotation(strict bool) string {
	p = p.Escaped()
	level := "error"
	switch {
	case p.IsWarning() && strict:
		p.Message = "warning: " + p.Message
	case p.IsWarning():
		level = "warning"
	}
	props := []string{"file=" + githubProperty(p.Path)}
	if p.Line > 0 {
		props = append(props, fmt.Sprintf("line=%d", p.Line))
		if p.Column > 0 {
			props = append(props, fmt.Sprintf("col=%d", p.Column))
		}
	}
	props = append(props, "title="+githubProperty(githubTitle(p)))
	return "::" + level + " " + strings.Join(props, ",") + "::" + githubData(p.Message)
}

// githubTitle names the problem's definition, where the problem has one.
func githubTitle(p Problem) string {
	switch {
	case p.Tenant != "" && p.Code != "":
		return "tasksync: " + p.Tenant + "/" + p.Code
	case p.Tenant != "":
		return "tasksync: " + p.Tenant
	}
	return "tasksync"
}

// githubData escapes a workflow command's message (escapeData of the
// Actions toolkit).
var githubData = strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A").Replace

// githubProperty escapes a workflow command's property value
// (escapeProperty of the Actions toolkit).
var githubProperty = strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A", ":", "%3A", ",", "%2C").Replace
