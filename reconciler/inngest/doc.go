// Package inngest serves each tenant's definitions as one Inngest app,
// syncs it with the Inngest server after every applied change, and checks
// the server's view of it.
package inngest
