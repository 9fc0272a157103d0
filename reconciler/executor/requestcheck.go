package executor

import (
	"fmt"
	"net/url"
	"strconv"
)

// checkRenderedHeader checks a header value as templates and secrets
// rendered it, before the request is built: validate refuses control
// characters written in a definition, but what a template or a secret
// renders is only known now. The error names the header and the
// character, never the value (it may hold a secret).
func checkRenderedHeader(name, value string) error {
	for i, r := range value {
		if (r < 0x20 && r != '\t') || r == 0x7f {
			return fmt.Errorf("headers.%s: the rendered value holds a control character (U+%04X) at byte %d; header values may hold no CR, LF, NUL or other control characters except tab: check the template or secret it is made from", name, r, i)
		}
	}
	return nil
}

// checkRenderedURL checks a URL's authority as templates and secrets
// rendered it: a port from 1 to 65535 if any, and no credentials, which
// belong in a header written with ${secret:NAME}.
func checkRenderedURL(u *url.URL) error {
	if u.User != nil {
		return fmt.Errorf("url: the rendered URL holds credentials (user info before '@'); refused: send them in a header with ${secret:NAME}")
	}
	if port := u.Port(); port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("url: the rendered URL has port %q; a port is a number from 1 to 65535: check the template it is made from", port)
		}
	}
	return nil
}
