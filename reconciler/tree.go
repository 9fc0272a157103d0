package reconciler

// TenantTree is what the definitions tree says about one tenant, as read
// by the definitions package.
type TenantTree struct {
	Tenant string
	// Definitions are the valid definitions of files without problems,
	// sorted by code. A file with any problem contributes none: its
	// previously applied definitions stay as they were.
	Definitions []Definition
	// Files lists every definition file read, sorted by path.
	Files []TreeFile
	// Problems are sorted by path, line and column.
	Problems []Problem
	// Warnings are findings that keep nothing from being applied (a
	// one-shot whose time has passed), sorted as Problems are; validate
	// shows them, the daemon does not record them as problems.
	Warnings []Problem
	// Settings is the tenant's TenantSettings document, when its file
	// has no problem; nil otherwise (the operator's defaults apply).
	Settings *TenantSettings
	// ReadError is set when part of the directory could not be read. What
	// was read is incomplete, so nothing of the tenant may be applied or
	// retired.
	ReadError bool
	// Stamp names what the tree was read from (its files' stamps, the
	// scripts they read, the grants they asked), when the source can
	// tell: a later TenantStamp equal to it means a load would read this
	// same tree again. Empty when the source cannot tell.
	Stamp string
}

// TreeFile is the outcome for one definition file.
type TreeFile struct {
	Path   string // slash-separated, relative to the tree root
	Failed bool
	// Codes are the definition codes the file names, as far as it could
	// be read, including those of invalid documents.
	Codes []string
}

// TenantSettings is a tenant's TenantSettings document: what the tenant's
// own tree says about how its definitions are reconciled.
type TenantSettings struct {
	// MaxRetire, when set, is the tenant's prune budget, in place of the
	// operator's default (--max-retire).
	MaxRetire *RetireBudget
	// Source is where the document is.
	Source Source
}
