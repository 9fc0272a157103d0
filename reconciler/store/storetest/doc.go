// Package storetest runs a throwaway PostgreSQL cluster for tests: initdb
// in a temporary directory, a server on a free loopback port, and a fresh
// database per test.
//
// A package's TestMain starts one cluster with Start and stops it after
// m.Run. Set TASKSYNC_TEST_DATABASE_URL to use an existing server instead
// (its user must be allowed to create databases).
package storetest
