// Command tasksync reconciles per-tenant YAML definitions of scheduled tasks
// and workflows with Postgres and Inngest. Run "tasksync help" for usage.
package main
