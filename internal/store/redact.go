package store

import (
	"errors"

	"github.com/iys-sync/iys-sync/internal/redact"
)

// errUnreadable replaces the driver's own message about a connection string
// it cannot parse: that message may quote a piece of the password.
var errUnreadable = errors.New("the connection string is not readable: want a URL such as postgres://user:password@host:5432/dbname, or key=value pairs (host, port, user, password, dbname)")

// RedactURL shows a connection string without its password, for messages and
// logs: postgres://user:***@host:5432/db. A string it cannot read is not
// echoed at all.
func RedactURL(dsn string) string { return redact.DSN(dsn) }

// readable reports whether RedactURL can take the string apart.
func readable(dsn string) bool { return redact.DSN(dsn) != redact.Unreadable }

// scrub hides the connection string and its password in err's text.
func scrub(err error, dsn string) error {
	return redact.New(redact.DSNSecrets(dsn)...).Error(err)
}
