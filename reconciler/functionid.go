package reconciler

// Inngest function ids.
//
// The SDK names a function <app id>-<id>, and an app is <prefix>-<tenant>.
// Tenant codes and definition codes both contain '-', so <prefix>-<tenant>-
// <code> is ambiguous: tenant a with code b-c and tenant a-b with code c
// are both <prefix>-a-b-c. A definition's id within its app is therefore
// its code after a '_', a character no tenant code holds: in
// <prefix>-<tenant>-_<code>, the tenant is everything between the prefix
// and the first '_', the code everything after it.

// DefaultAppPrefix is the prefix of the app ids when none is configured.
const DefaultAppPrefix = "tasksync"

// AppID is a tenant's Inngest app id: <appPrefix>-<tenant>.
func AppID(appPrefix, tenant string) string { return appPrefix + "-" + tenant }

// FunctionSlug is a definition's function id within its tenant's app:
// '_' then the code.
func FunctionSlug(code string) string { return "_" + code }

// FunctionID is a definition's fully qualified Inngest function id:
// <appPrefix>-<tenant>-_<code>. Distinct tenant/code pairs (tenant codes
// without '_') never share one.
func FunctionID(appPrefix, tenant, code string) string {
	return AppID(appPrefix, tenant) + "-" + FunctionSlug(code)
}
