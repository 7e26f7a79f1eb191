// Package redact keeps secrets (passwords, connection strings, tokens) out of
// what the process prints, logs and stores: a Scrubber replaces every form in
// which a secret may be written (as given, percent-encoded, JSON-escaped)
// with "***", and hides the password of any URL-shaped
// connection string (scheme://user:PASSWORD@) even when the secret is not
// known.
//
// The settings register their secrets with the process-wide scrubber
// (Register) as they are read; the logger's writer, the exit message and the
// error texts stored in the database pass through it.
package redact

import (
	"fmt"
	"io"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"unicode/utf16"
	"unicode/utf8"
)

// Mask replaces a secret.
const Mask = "***"

// MinLen is the shortest secret scrubbed wherever it appears: a shorter one
// would mask common words and break log lines (JSON keys), while hiding
// nothing worth guessing. URL-shaped credentials are hidden at any length.
const MinLen = 4

// Scrubber hides a set of secrets in text. It is safe for concurrent use.
type Scrubber struct {
	mu      sync.RWMutex
	secrets []string       // longest first
	re      *regexp.Regexp // every form of every secret; nil: none
	// anchors are a literal every form of a secret holds (its longest run
	// of ASCII letters and digits, which no encoder escapes); a text holding
	// none of them is spared the regexp. always: a secret without one.
	anchors []string
	always  bool
}

// New makes a Scrubber of secrets.
func New(secrets ...string) *Scrubber {
	s := &Scrubber{}
	s.Add(secrets...)
	return s
}

// Add adds secrets; those shorter than MinLen are left out.
func (s *Scrubber) Add(secrets ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	added := false
	for _, secret := range secrets {
		if len(secret) >= MinLen && !slices.Contains(s.secrets, secret) {
			s.secrets = append(s.secrets, secret)
			added = true
		}
	}
	if !added {
		return
	}
	// Longest first: the alternation takes the first that matches, so a
	// connection string goes whole rather than leaving all but its password.
	slices.SortStableFunc(s.secrets, func(a, b string) int { return len(b) - len(a) })
	alts := make([]string, len(s.secrets))
	s.anchors, s.always = nil, false
	for i, secret := range s.secrets {
		alts[i] = pattern(secret)
		if a := anchor(secret); a != "" {
			s.anchors = append(s.anchors, a)
		} else {
			s.always = true
		}
	}
	s.re = regexp.MustCompile(strings.Join(alts, "|"))
}

// anchor is the longest run of ASCII letters and digits in secret, when it
// has at least 3; else "".
func anchor(secret string) string {
	best, start := "", -1
	for i := 0; i <= len(secret); i++ {
		alnum := i < len(secret) && (secret[i] >= 'a' && secret[i] <= 'z' || secret[i] >= 'A' && secret[i] <= 'Z' || secret[i] >= '0' && secret[i] <= '9')
		switch {
		case alnum && start < 0:
			start = i
		case !alnum && start >= 0:
			if i-start > len(best) {
				best = secret[start:i]
			}
			start = -1
		}
	}
	if len(best) < 3 {
		return ""
	}
	return best
}

// mayHold tells whether text may hold a form of a secret.
func (s *Scrubber) mayHold(text string) bool {
	if s.always {
		return true
	}
	for _, a := range s.anchors {
		if strings.Contains(text, a) {
			return true
		}
	}
	return false
}

// String returns text with every secret and every URL's password masked.
func (s *Scrubber) String(text string) string {
	s.mu.RLock()
	re := s.re
	if re != nil && !s.mayHold(text) {
		re = nil
	}
	s.mu.RUnlock()
	if re != nil {
		text = re.ReplaceAllLiteralString(text, Mask)
	}
	return Credentials(text)
}

// pattern matches secret in every form a message may give it, character by
// character: as is; percent-encoded (either case, "+" for a space; letters
// and digits too, though no encoder does: see anchor); and
// JSON-escaped (\" \\ \/ \n..., \uXXXX in either case, a surrogate pair
// beyond the BMP), with any number of backslashes, since a JSON log line
// escapes an already escaped body again.
func pattern(secret string) string {
	var b strings.Builder
	for i := 0; i < len(secret); {
		r, size := utf8.DecodeRuneInString(secret[i:])
		raw := secret[i : i+size]
		i += size
		alts := []string{regexp.QuoteMeta(raw)}
		var pct strings.Builder
		for _, c := range []byte(raw) {
			fmt.Fprintf(&pct, "%%%02X", c)
		}
		alts = append(alts, "(?i:"+pct.String()+")")
		if r == ' ' {
			alts = append(alts, `\+`)
		}
		switch r {
		case '"', '\\', '/':
			alts = append(alts, `\\+`+regexp.QuoteMeta(raw))
		case '\n', '\r', '\t', '\b', '\f':
			alts = append(alts, `\\+`+map[rune]string{'\n': "n", '\r': "r", '\t': "t", '\b': "b", '\f': "f"}[r])
		}
		switch {
		case r == utf8.RuneError && size == 1:
			// not UTF-8: only the byte itself or its percent form
		case r > 0xFFFF:
			hi, lo := utf16.EncodeRune(r)
			alts = append(alts, fmt.Sprintf(`(?i:\\+u%04x\\+u%04x)`, hi, lo))
		default:
			alts = append(alts, fmt.Sprintf(`(?i:\\+u%04x)`, r))
		}
		b.WriteString("(?:" + strings.Join(alts, "|") + ")")
	}
	return b.String()
}

// Error returns err with its text scrubbed: err itself when there was nothing
// to hide, else an error whose text is the clean one. It still unwraps to err
// (errors.Is and errors.As keep working), but nothing prints through it.
func (s *Scrubber) Error(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	clean := s.String(msg)
	if clean == msg {
		return err
	}
	return &scrubbed{msg: clean, err: err}
}

type scrubbed struct {
	msg string
	err error
}

func (e *scrubbed) Error() string { return e.msg }
func (e *scrubbed) Unwrap() error { return e.err }

// process is the scrubber of the process's own secrets.
var process = New()

// Register adds secrets to the process-wide scrubber.
func Register(secrets ...string) { process.Add(secrets...) }

// RegisterDSN adds a connection string's secrets (DSNSecrets) to the
// process-wide scrubber.
func RegisterDSN(dsn string) { process.Add(DSNSecrets(dsn)...) }

// String scrubs text of the process's secrets and of URL passwords.
func String(text string) string { return process.String(text) }

// Error scrubs err of the process's secrets and of URL passwords.
func Error(err error) error { return process.Error(err) }

// Writer returns a writer that scrubs each Write of the process's secrets
// before passing it to w. Each Write must hold whole messages, as zap's
// (one entry a Write) do: a secret split across two Writes is not seen.
func Writer(w io.Writer) io.Writer { return &writer{w: w} }

type writer struct{ w io.Writer }

func (w *writer) Write(p []byte) (int, error) {
	clean := String(string(p))
	if _, err := io.WriteString(w.w, clean); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Sync flushes w when it can (zap calls it).
func (w *writer) Sync() error {
	if s, ok := w.w.(interface{ Sync() error }); ok {
		return s.Sync()
	}
	return nil
}

// DSNSecrets lists the secrets of a PostgreSQL connection string: the string
// itself and its password, as written and decoded. A URL that does not parse
// (a password with "%zz" or a space, a bad port) still yields its password,
// read between the first ":" of the user info and the last "@".
func DSNSecrets(dsn string) []string {
	if dsn == "" {
		return nil
	}
	out := []string{dsn}
	if IsURL(dsn) {
		rest := dsn[strings.Index(dsn, "://")+3:]
		if at := strings.LastIndexByte(rest, '@'); at >= 0 {
			if _, pw, ok := strings.Cut(rest[:at], ":"); ok && pw != "" {
				out = append(out, pw)
			}
		}
		if u, err := url.Parse(dsn); err == nil {
			if u.User != nil {
				if pw, ok := u.User.Password(); ok && pw != "" {
					out = append(out, pw)
				}
			}
			if pw := u.Query().Get("password"); pw != "" {
				out = append(out, pw)
			}
		}
		return out
	}
	pairs, _ := KeyValues(dsn)
	for _, p := range pairs {
		if p[0] == "password" && p[1] != "" {
			out = append(out, p[1], unquoteKV(p[1]))
		}
	}
	// A string too broken to split: whatever follows "password=".
	if i := strings.Index(dsn, "password"); i >= 0 && len(pairs) == 0 {
		v := strings.TrimLeft(dsn[i+len("password"):], " \t=")
		if v != "" {
			out = append(out, v, strings.Fields(v)[0])
		}
	}
	return out
}

// IsURL tells a postgres:// connection string from a key=value one.
func IsURL(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// kvPair is one key=value of a libpq connection string; values may be quoted.
var kvPair = regexp.MustCompile(`\s*(\w+)\s*=\s*('(?:[^'\\]|\\.)*'|[^\s']*)\s*`)

// KeyValues splits a key=value connection string into its pairs (values as
// written, quotes kept), or fails when any part of it is not a clean pair.
func KeyValues(dsn string) ([][2]string, bool) {
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

// unquoteKV reads a quoted key=value value: 'it\'s' → it's.
func unquoteKV(v string) string {
	if len(v) < 2 || v[0] != '\'' || v[len(v)-1] != '\'' {
		return v
	}
	var b strings.Builder
	for i := 1; i < len(v)-1; i++ {
		if v[i] == '\\' && i+1 < len(v)-1 {
			i++
		}
		b.WriteByte(v[i])
	}
	return b.String()
}

// Unreadable stands for a connection string that DSN cannot take apart, and
// so never echoes.
const Unreadable = "(unreadable connection string)"

// DSN shows a connection string without its password, for messages and
// logs: postgres://user:***@host:5432/db, host=db password=*** dbname=x. A
// string it cannot read is not echoed at all (Unreadable).
func DSN(dsn string) string {
	if IsURL(dsn) {
		return redactURL(dsn)
	}
	return redactKV(dsn)
}

func redactURL(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return Unreadable
	}
	var b strings.Builder
	b.WriteString(u.Scheme + "://")
	if u.User != nil {
		b.WriteString(url.PathEscape(u.User.Username()))
		if _, ok := u.User.Password(); ok {
			b.WriteString(":" + Mask)
		}
		b.WriteByte('@')
	}
	b.WriteString(u.Host)
	b.WriteString(u.EscapedPath())
	if q := u.Query(); len(q) > 0 {
		if q.Has("password") {
			q.Set("password", Mask)
		}
		b.WriteString("?" + strings.ReplaceAll(q.Encode(), url.QueryEscape(Mask), Mask))
	}
	return b.String()
}

func redactKV(dsn string) string {
	pairs, ok := KeyValues(dsn)
	if !ok {
		return Unreadable
	}
	parts := make([]string, len(pairs))
	for i, p := range pairs {
		if p[0] == "password" {
			p[1] = Mask
		}
		parts[i] = p[0] + "=" + p[1]
	}
	return strings.Join(parts, " ")
}

// The password of a URL-shaped connection string (scheme://user:PASSWORD@),
// however it is written (unescaped "%", spaces), up to 255 characters without
// "/", '"' or a line break: so that "http://host:8089/path ... u***@x.com"
// in a log line is left alone. And that of a key=value one (password=...).
// Migration 0006 applies the same patterns in SQL.
var (
	urlCredentials = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.-]*://[^:/?#@\s"'\\]*:)[^@\n"/]{1,255}@`)
	kvCredentials  = regexp.MustCompile(`(password\s*=\s*)('(?:[^'\\]|\\.|'')*'|[^\s'"&]+)`)
)

// Credentials hides the passwords of URL-shaped and key=value connection
// strings in text: postgres://app:***@db/iys, password=***. It needs no
// knowledge of the secret, and so may mask more than a password (the rest of
// a malformed URL up to its "@").
func Credentials(text string) string {
	if strings.Contains(text, "://") {
		text = urlCredentials.ReplaceAllString(text, "${1}"+Mask+"@")
	}
	if strings.Contains(text, "password") {
		text = kvCredentials.ReplaceAllStringFunc(text, func(m string) string {
			sub := kvCredentials.FindStringSubmatch(m)
			if sub[2] == Mask {
				return m
			}
			return sub[1] + Mask
		})
	}
	return text
}
