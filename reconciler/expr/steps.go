package expr

import (
	"regexp"
	"strconv"
)

// Step ids may hold '-' as codes do (notify-manager). CEL reads such an id
// only by index, steps["notify-manager"]: written steps.notify-manager it
// is the subtraction steps.notify - manager.

// celIdent matches a CEL identifier.
var celIdent = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// dottedHyphen matches steps.<id> written with a '-' in the id.
var dottedHyphen = regexp.MustCompile(`\bsteps\.([A-Za-z_][A-Za-z0-9_]*(?:-[A-Za-z0-9_]+)+)`)

// StepRef is how an expression reads the output of step id: steps.<id>
// when id is a CEL identifier, steps["<id>"] otherwise.
func StepRef(id string) string {
	if celIdent.MatchString(id) {
		return "steps." + id
	}
	return "steps[" + strconv.Quote(id) + "]"
}

// DottedStepRef returns the step id that src reads as steps.<id> with a
// '-' in it (which CEL takes for a subtraction), or "" when it reads none.
func DottedStepRef(src string) string {
	if m := dottedHyphen.FindStringSubmatch(src); m != nil {
		return m[1]
	}
	return ""
}

// BracketStepRefs rewrites every steps.<id> with a '-' in src as
// steps["<id>"]: src as its author meant it.
func BracketStepRefs(src string) string {
	return dottedHyphen.ReplaceAllStringFunc(src, func(m string) string { return StepRef(m[len("steps."):]) })
}
