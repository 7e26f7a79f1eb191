package redact

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// A password echoed inside a JSON body, as each kind of encoder writes it,
// is masked whole: quotes, backslashes, non-ASCII as \u00e7 or \u00E7, "/".
func TestJSONEscapedSecret(t *testing.T) {
	const pw = `p"a\ss/çö😀<x>`
	s := New(pw)
	bodies := []string{
		`{"password":"p\"a\\ss/çö😀<x>"}`,
		`{"password":"p\"a\\ss/çö😀\u003cx\u003e"}`,
		`{"password":"p\"a\\ss/\u00e7\u00f6\ud83d\ude00<x>"}`,
		`{"password":"p\"a\\ss\/\u00E7\u00F6\uD83D\uDE00\u003Cx\u003E"}`,
	}
	b, _ := json.Marshal(map[string]string{"password": pw})
	bodies = append(bodies, string(b))
	for _, body := range bodies {
		got := s.String("login refused: " + body)
		if got != `login refused: {"password":"***"}` {
			t.Errorf("%s\n-> %s", body, got)
		}
		// The same message in a JSON log line: escaped once more.
		line, _ := json.Marshal(map[string]string{"error": body})
		if got, want := s.String(string(line)), `{"error":"{\"password\":\"***\"}"}`; got != want {
			t.Errorf("log line %s\n-> %s, want %s", line, got, want)
		}
	}
}

// The password of a connection string is masked in the forms it takes in a
// parser's message: as written in the URL, decoded, quoted by %q.
func TestDSNSecrets(t *testing.T) {
	for _, tc := range []struct{ dsn, pw string }{
		{"postgres://app:pa%zzword@db:5432/x", "pa%zzword"},
		{"postgres://app:pass word@db:5432/x", "pass word"},
		{"postgres://app:s3cretPW@db:notaport/x", "s3cretPW"},
		{"postgres://app:p%40ss%2Fword@db/x", "p@ss/word"},
		{"postgresql://app@db/x?sslmode=disable&password=qu%20ery", "qu ery"},
		{"host=db user=app password='it\\'s secret' dbname=x", "it's secret"},
		{"host=db password=plainPW dbname=x", "plainPW"},
		{"host=db password plainPW2", "plainPW2"},
	} {
		s := New(DSNSecrets(tc.dsn)...)
		for _, msg := range []string{
			fmt.Sprintf("parse %q: invalid", tc.dsn),
			"connect to " + tc.dsn + " failed",
			"password was " + tc.pw + ".",
		} {
			if got := s.String(msg); strings.Contains(got, tc.pw) || strings.Contains(got, tc.dsn) {
				t.Errorf("%s: %q -> %q", tc.dsn, msg, got)
			}
		}
	}
}

// URL-shaped credentials are hidden without knowing the secret; URLs without
// a password, and ports followed by a path, are left alone.
func TestCredentials(t *testing.T) {
	for in, want := range map[string]string{
		`parse "postgres://app:pa%zz word@db/x": invalid URL escape`:    `parse "postgres://app:***@db/x": invalid URL escape`,
		`postgres://app:short@db/x`:                                     `postgres://app:***@db/x`,
		`postgres://app:***@db/x`:                                       `postgres://app:***@db/x`,
		`host=db password='a b' dbname=x`:                               `host=db password=*** dbname=x`,
		`postgres://db/x?sslmode=disable&password=pw1&a=b`:              `postgres://db/x?sslmode=disable&password=***&a=b`,
		`Post "http://127.0.0.1:8089/sbs/x": refused; u***@example.com`: `Post "http://127.0.0.1:8089/sbs/x": refused; u***@example.com`,
		`check the username and password`:                               `check the username and password`,
	} {
		if got := Credentials(in); got != want {
			t.Errorf("Credentials(%q) = %q, want %q", in, got, want)
		}
	}
}

// Short secrets are not masked in plain text: they would mask common words.
func TestMinLen(t *testing.T) {
	if got := New("abc").String("abc abcd"); got != "abc abcd" {
		t.Errorf("a 3-character secret was masked: %q", got)
	}
	if got := New("abcd").String("abc abcd"); got != "abc ***" {
		t.Errorf("got %q", got)
	}
}

// Error scrubs the text and keeps the chain for errors.Is.
func TestError(t *testing.T) {
	base := errors.New("boom")
	s := New("hunter22")
	err := s.Error(fmt.Errorf("login hunter22: %w", base))
	if err.Error() != "login ***: boom" || !errors.Is(err, base) {
		t.Errorf("err = %v (is base: %v)", err, errors.Is(err, base))
	}
	if plain := errors.New("nothing"); s.Error(plain) != plain {
		t.Error("an error with nothing to hide was replaced")
	}
}

// The process-wide writer masks registered secrets in each write.
func TestWriter(t *testing.T) {
	Register("reg1stered-secret")
	RegisterDSN("postgres://u:dsn%zzsecret@h/db")
	var b bytes.Buffer
	w := Writer(&b)
	line := `{"msg":"x","error":"reg1stered-secret and dsn%zzsecret"}` + "\n"
	n, err := w.Write([]byte(line))
	if err != nil || n != len(line) {
		t.Fatalf("Write = %d, %v", n, err)
	}
	if got := b.String(); got != `{"msg":"x","error":"*** and ***"}`+"\n" {
		t.Errorf("wrote %q", got)
	}
}

func TestDSN(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://app:pw@db.example:5432/iys?sslmode=require": "postgres://app:***@db.example:5432/iys?sslmode=require",
		"postgresql://app@db/iys":                               "postgresql://app@db/iys",
		"postgres://app:p%40ss@db/iys":                          "postgres://app:***@db/iys",
		"postgres://db/iys?password=pw&sslmode=disable":         "postgres://db/iys?password=***&sslmode=disable",
		"host=db user=app password=pw dbname=iys":               "host=db user=app password=*** dbname=iys",
		"host=db password='p w' dbname=iys":                     "host=db password=*** dbname=iys",
		"postgres://app:pw@[::1/iys":                            Unreadable,
		"nonsense":                                              Unreadable,
	} {
		if got := DSN(in); got != want {
			t.Errorf("DSN(%q) = %q, want %q", in, got, want)
		}
	}
}
