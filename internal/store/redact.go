package store

import (
	"errors"
	"net/url"
	"regexp"
	"strings"
)

// unreadable stands for a connection string that is never echoed because we
// cannot tell which part of it is the password.
const unreadable = "(unreadable connection string)"

// errUnreadable replaces the driver's own message about a connection string
// it cannot parse: that message may quote a piece of the password.
var errUnreadable = errors.New("the connection string is not readable: want a URL such as postgres://user:password@host:5432/dbname, or key=value pairs (host, port, user, password, dbname)")

// RedactURL shows a connection string without its password, for messages and
// logs: postgres://user:***@host:5432/db. A string it cannot read is not
// echoed at all.
func RedactURL(dsn string) string {
	if isURL(dsn) {
		return redactURL(dsn)
	}
	return redactKV(dsn)
}

func isURL(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

func redactURL(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return unreadable
	}
	var b strings.Builder
	b.WriteString(u.Scheme + "://")
	if u.User != nil {
		b.WriteString(url.PathEscape(u.User.Username()))
		if _, ok := u.User.Password(); ok {
			b.WriteString(":***")
		}
		b.WriteByte('@')
	}
	b.WriteString(u.Host)
	b.WriteString(u.EscapedPath())
	if q := u.Query(); len(q) > 0 {
		if q.Has("password") {
			q.Set("password", "***")
		}
		b.WriteString("?" + strings.ReplaceAll(q.Encode(), "%2A%2A%2A", "***"))
	}
	return b.String()
}

// kvPair is one key=value of a libpq connection string; values may be quoted.
var kvPair = regexp.MustCompile(`\s*(\w+)\s*=\s*('(?:[^'\\]|\\.)*'|[^\s']*)\s*`)

// kvPairs splits a key=value connection string, or fails when any part of it
// is not a clean pair.
func kvPairs(dsn string) ([][2]string, bool) {
	var pairs [][2]string
	rest := dsn
	for strings.TrimSpace(rest) != "" {
		loc := kvPair.FindStringSubmatchIndex(rest)
		if loc == nil || loc[0] != 0 {
			return nil, false
		}
		pairs = append(pairs, [2]string{rest[loc[2]:loc[3]], rest[loc[4]:loc[5]]})
		rest = rest[loc[1]:]
	}
	return pairs, len(pairs) > 0
}

func redactKV(dsn string) string {
	pairs, ok := kvPairs(dsn)
	if !ok {
		return unreadable
	}
	parts := make([]string, len(pairs))
	for i, p := range pairs {
		if p[0] == "password" {
			p[1] = "***"
		}
		parts[i] = p[0] + "=" + p[1]
	}
	return strings.Join(parts, " ")
}

// readable reports whether RedactURL can take the string apart.
func readable(dsn string) bool { return RedactURL(dsn) != unreadable }

// scrub hides the connection string and its password in err's text. When it
// had to hide something, the original chain is dropped, since it holds them.
func scrub(err error, dsn string) error {
	msg := err.Error()
	clean := msg
	for _, secret := range secrets(dsn) {
		if secret != "" {
			clean = strings.ReplaceAll(clean, secret, "***")
		}
	}
	if clean == msg {
		return err
	}
	return scrubbed(clean)
}

type scrubbed string

func (s scrubbed) Error() string { return string(s) }

// secrets lists the forms in which a readable DSN's password may appear in
// an error, the whole DSN first.
func secrets(dsn string) []string {
	out := []string{dsn}
	if isURL(dsn) {
		if u, err := url.Parse(dsn); err == nil {
			if u.User != nil {
				if pw, ok := u.User.Password(); ok {
					out = append(out, url.UserPassword("", pw).String()[1:], pw)
				}
			}
			if pw := u.Query().Get("password"); pw != "" {
				out = append(out, url.QueryEscape(pw), pw)
			}
		}
		return out
	}
	pairs, _ := kvPairs(dsn)
	for _, p := range pairs {
		if p[0] == "password" {
			out = append(out, p[1], strings.Trim(p[1], "'"))
		}
	}
	return out
}
