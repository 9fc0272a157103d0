package executor

import (
	"errors"

	"github.com/riveredge/tasksync/reconciler"
	"github.com/riveredge/tasksync/reconciler/expr"
)

// final marks, with reconciler.Final, the errors of an action that a
// retry cannot mend, since the same event and definition make them again:
//
//   - a template or expression that fails on the run's data (a missing
//     key, a wrong type, a value too large, a cost over the limit), but
//     not one cut short because the run itself ended;
//   - an address the SSRF guard refuses;
//   - a request its rendered values make invalid (a URL that is not
//     absolute or holds credentials, a control character in a header, an
//     argument holding NUL), marked where it is found.
//
// Everything else may succeed later and follows the definition's
// retries: the network and DNS, the remote's answer whatever its status
// (a 404 may be a record not replicated yet, a 401 a token being
// rotated: expect_status is how a definition accepts a status), a secret
// not granted yet (a file in the secrets directory is read on every
// run), the sandbox.
func final(err error) error {
	var ee *expr.Error
	if (errors.As(err, &ee) && !ee.Interrupted()) || errors.Is(err, ErrRefused) {
		return reconciler.Final(err)
	}
	return err
}
