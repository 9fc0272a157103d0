package store_test

import (
	"database/sql"
	"slices"
	"testing"
	"testing/fstest"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/riveredge/tasksync/migrations"
	"github.com/riveredge/tasksync/reconciler/store"
	"github.com/riveredge/tasksync/reconciler/store/storetest"
)

// functionIDs returns tenant/code → inngest_function_id of the live rows.
func functionIDs(t *testing.T, url string) map[string]string {
	t.Helper()
	conn := storetest.Conn(t, url)
	rows, err := conn.Query(ctxT(t), `select t.code || '/' || d.code, d.inngest_function_id from root_scheduled_tasks d
		join root_tenants t on t.id = d.tenant_id where d.deleted_at is null`)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for rows.Next() {
		var k, id string
		if err := rows.Scan(&k, &id); err != nil {
			t.Fatal(err)
		}
		out[k] = id
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestFunctionIDsUnambiguous: tenant a with code b-c and tenant a-b with
// code c are stored under distinct function ids, those the registry
// registers.
func TestFunctionIDsUnambiguous(t *testing.T) {
	s, url := pg.NewStore(t, store.Options{})
	reconcile(t, s, collidingTree(), "")
	ids := functionIDs(t, url)
	want := map[string]string{"a/b-c": "tasksync-a-_b-c", "a-b/c": "tasksync-a-b-_c"}
	for k, w := range want {
		if ids[k] != w {
			t.Errorf("function id of %s = %q, want %q", k, ids[k], w)
		}
	}
	if got := s.FunctionID("a", "b-c"); got == s.FunctionID("a-b", "c") {
		t.Errorf("FunctionID(a, b-c) = FunctionID(a-b, c) = %s", got)
	}
}

// TestMigrateRewritesFunctionIDs: a database written before the change
// holds <prefix>-<tenant>-<code> for definitions whose spec will not
// change (so no apply rewrites them); the migration rewrites each live
// row, and going down restores them.
func TestMigrateRewritesFunctionIDs(t *testing.T) {
	s, url := pg.NewStore(t, store.Options{})
	reconcile(t, s, collidingTree(), "")
	_, p := gooseAt(t, url, 2)
	old := functionIDs(t, url)
	if old["a/b-c"] != "tasksync-a-b-c" || old["a-b/c"] != "tasksync-a-b-c" {
		t.Fatalf("ids at version 2 = %v, want the old colliding ones", old)
	}
	if res, err := p.UpTo(ctxT(t), 3); err != nil || len(res) != 1 {
		t.Fatalf("migrate to 3 = %d, %v; want the one migration", len(res), err)
	}
	ids := functionIDs(t, url)
	if ids["a/b-c"] != "tasksync-a-_b-c" || ids["a-b/c"] != "tasksync-a-b-_c" {
		t.Errorf("ids after the migration = %v", ids)
	}
	// An unchanged tree applies nothing and the ids stay (at the latest
	// schema, which the reconciler reads the applied versions of).
	if _, err := p.Up(ctxT(t)); err != nil {
		t.Fatalf("migrate up: %v", err)
	}
	if res := reconcile(t, s, collidingTree(), ""); res.Counts.Unchanged != 2 {
		t.Errorf("re-apply counts = %+v, want 2 unchanged", res.Counts)
	}
	if again := functionIDs(t, url); !slices.Equal(sortedValues(again), sortedValues(ids)) {
		t.Errorf("ids after a re-apply = %v, want %v", again, ids)
	}
}

func collidingTree() fstest.MapFS {
	return fstest.MapFS{
		"a/x.yaml":   file(task("b-c", "0 2 * * *")),
		"a-b/x.yaml": file(task("c", "0 3 * * *")),
	}
}

// gooseDB opens the database at url and the migrations' provider over
// it, for a test that moves between versions itself.
func gooseDB(t *testing.T, url string) (*sql.DB, *goose.Provider) {
	t.Helper()
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	db := stdlib.OpenDB(*cfg)
	t.Cleanup(func() { db.Close() })
	p, err := goose.NewProvider(goose.DialectPostgres, db, migrations.FS)
	if err != nil {
		t.Fatal(err)
	}
	return db, p
}

// gooseAt is gooseDB with the database migrated up or down to version.
func gooseAt(t *testing.T, url string, version int64) (*sql.DB, *goose.Provider) {
	t.Helper()
	db, p := gooseDB(t, url)
	cur, err := p.GetDBVersion(ctxT(t))
	switch {
	case err != nil:
	case cur < version:
		_, err = p.UpTo(ctxT(t), version)
	case cur > version:
		_, err = p.DownTo(ctxT(t), version)
	}
	if err != nil {
		t.Fatalf("migrate to %d: %v", version, err)
	}
	return db, p
}

func sortedValues(m map[string]string) []string {
	var v []string
	for _, x := range m {
		v = append(v, x)
	}
	slices.Sort(v)
	return v
}
