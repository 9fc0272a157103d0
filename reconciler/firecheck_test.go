package reconciler_test

import (
	"context"
	"testing"
	"time"

	"github.com/riveredge/tasksync/reconciler/store/storetest"
	"github.com/riveredge/tasksync/reconciler/waittest"
)

// TestResyncCountsMissedFiresOnlyWhenDue: the leader's resync counts the
// fires of a minutely task that started no run, and records, for a daily
// task with no fire in its window, when its next fire is due instead of a
// check, so that later resyncs leave it out until then.
func TestResyncCountsMissedFiresOnlyWhenDue(t *testing.T) {
	r := newRig(t, map[string]string{
		"acme/minutely.yaml": controllerTask("minutely", "* * * * *"),
		"acme/daily.yaml":    controllerTask("daily", "0 2 * * *"),
	}, rigOptions{resync: 200 * time.Millisecond})
	ctx := context.Background()
	conn := storetest.Conn(t, r.url)
	// Applied 30 minutes ago, as far as the checks can tell; the daily
	// task's next 02:00 is ahead of now - 5 min unless it is just past 2.
	r.run(t)
	past := time.Now().Add(-30 * time.Minute)
	if _, err := conn.Exec(ctx, `update root_scheduled_tasks set updated_at = $1`, past); err != nil {
		t.Fatal(err)
	}
	waittest.For(t, "missed fires counted for the minutely task", 10*time.Second, func() bool {
		d, err := r.st.Definition(ctx, "acme", "minutely")
		return err == nil && d.MissedFires >= 20
	})
	var due *time.Time
	waittest.For(t, "the daily task's next fire recorded as due", 10*time.Second, func() bool {
		return conn.QueryRow(ctx, `select fires_due_at from root_scheduled_tasks where code = 'daily'`).Scan(&due) == nil && due != nil
	})
	if due.UTC().Hour() != 2 || !due.After(past) {
		t.Errorf("the daily task's next fire is recorded as due at %v, want the next 02:00 UTC", due)
	}
	var checked *time.Time
	if err := conn.QueryRow(ctx, `select fires_checked_at from root_scheduled_tasks where code = 'daily'`).Scan(&checked); err != nil {
		t.Fatal(err)
	}
	if checked != nil && due.After(time.Now()) {
		t.Errorf("a check of the daily task with no fire due was recorded (fires_checked_at %v)", checked)
	}
}
