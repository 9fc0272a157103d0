// Command devrun is what `make run` starts: a throwaway PostgreSQL (data
// under .run/), the Inngest dev server, a loopback sample API the sample
// tree's api_calls reach, and `tasksync run` on tasks.d/, every port
// settable; once tasksync is ready it prints the URLs, the log files and
// a curl that starts a run. Ctrl-C stops everything. Unless
// TASKSYNC_SECRETS_DIR is set, the secrets the tree names are placeholders
// written to .run/secrets/<tenant>/NAME.
package main
