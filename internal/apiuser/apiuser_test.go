package apiuser_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/iys-sync/iys-sync/internal/apiuser"
	"github.com/iys-sync/iys-sync/internal/consent"
	"github.com/iys-sync/iys-sync/internal/iysclient"
	"github.com/iys-sync/iys-sync/internal/iysclient/iysclienttest"
	"github.com/iys-sync/iys-sync/internal/pgtest"
	"github.com/iys-sync/iys-sync/internal/pgtest/storedb"
	"github.com/iys-sync/iys-sync/internal/sandbox"
	"github.com/iys-sync/iys-sync/internal/sandbox/sandboxtest"
	"github.com/iys-sync/iys-sync/internal/store"

	_ "github.com/lib/pq"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

var creds = iysclient.Credentials{Username: sandbox.DefaultUsername, Password: sandbox.DefaultPassword}

func openStore(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), storedb.NewDB(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// process is what one process of the API user makes: its own client, its
// own vault on the shared database.
func process(t *testing.T, st *store.Store, url string, c iysclient.Credentials, opts ...iysclient.Option) *iysclient.Client {
	t.Helper()
	v, err := apiuser.New(st, url, c, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	return iysclienttest.New(t, url, c, append([]iysclient.Option{iysclient.WithTokenVault(v)}, opts...)...)
}

func call(t *testing.T, c *iysclient.Client) error {
	t.Helper()
	_, err := c.Brands(context.Background(), "700001")
	return err
}

// Processes of one API user log in once between them, one after the other
// and at once.
func TestProcessesShareOneLogin(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Start(t, sandbox.Options{LoginLimit: 1})
	st := openStore(t)
	for i := range 3 {
		if err := call(t, process(t, st, sb.URL, creds)); err != nil {
			t.Fatalf("process %d: %v", i, err)
		}
	}
	errs := make(chan error, 4)
	for range 4 {
		go func() { errs <- call(t, process(t, st, sb.URL, creds)) }()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatalf("process at once: %v", err)
		}
	}
	if s := sb.Admin.Stats(); s.Tokens.Logins != 1 || s.Tokens.Refreshes != 0 {
		t.Fatalf("tokens %+v, want 1 login for 7 processes", s.Tokens)
	}
}

// The process that finds the shared token due refreshes it once; the others
// take its result instead of refreshing again.
func TestRefreshShared(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Start(t, sandbox.Options{TokenTTL: 2 * time.Second, LoginLimit: 1})
	st := openStore(t)
	a, b := process(t, st, sb.URL, creds), process(t, st, sb.URL, creds)
	if err := call(t, a); err != nil {
		t.Fatal(err)
	}
	if err := call(t, b); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1200 * time.Millisecond) // past the renewal point (half the lifetime)
	if err := call(t, b); err != nil {
		t.Fatal(err)
	}
	if err := call(t, a); err != nil {
		t.Fatal(err)
	}
	if s := sb.Admin.Stats(); s.Tokens.Logins != 1 || s.Tokens.Refreshes != 1 {
		t.Fatalf("tokens %+v, want 1 login and 1 refresh for 2 processes", s.Tokens)
	}
}

// An H084 met by one process pauses every process of the API user: a new
// one fails fast, says until when, and sends no login.
func TestPauseShared(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Start(t, sandbox.Options{LoginLimit: 1})
	st := openStore(t)
	if err := call(t, iysclienttest.New(t, sb.URL, creds)); err != nil { // takes the hour's one login
		t.Fatal(err)
	}
	var paused *iysclient.LoginPausedError
	if err := call(t, process(t, st, sb.URL, creds)); !errors.As(err, &paused) {
		t.Fatalf("over the cap: %v, want a login pause", err)
	}
	until := paused.Until
	if d := time.Until(until); d < 50*time.Minute {
		t.Fatalf("paused until %v, want about an hour", until)
	}
	err := call(t, process(t, st, sb.URL, creds))
	if !errors.As(err, &paused) || !paused.Until.Equal(until) {
		t.Fatalf("another process: %v, want the same pause until %v", err, until)
	}
	if n := sb.Admin.Stats().ThrottledByCode[consent.CodeLoginLimit]; n != 1 {
		t.Fatalf("İYS refused %d logins, want 1: the second process must not try", n)
	}
}

// spy is a vault that keeps what the client stores through it.
type spy struct {
	*apiuser.Shared
	stored iysclient.SharedTokens
}

func (s *spy) Update(ctx context.Context, renew func(iysclient.SharedTokens) (iysclient.SharedTokens, bool, error)) error {
	return s.Shared.Update(ctx, func(cur iysclient.SharedTokens) (iysclient.SharedTokens, bool, error) {
		next, keep, err := renew(cur)
		if keep {
			s.stored = next
		}
		return next, keep, err
	})
}

// The tokens are sealed at rest; another password opens none of them.
func TestSealedUnderThePassword(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Start(t, sandbox.Options{})
	url := storedb.NewDB(t)
	st, err := store.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	v, err := apiuser.New(st, sb.URL, creds, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	s := &spy{Shared: v}
	if err := call(t, iysclienttest.New(t, sb.URL, creds, iysclient.WithTokenVault(s))); err != nil {
		t.Fatal(err)
	}
	if s.stored.Access == "" || s.stored.Refresh == "" {
		t.Fatalf("the client stored no token pair: %+v", s.stored)
	}
	db, err := sql.Open("postgres", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var account string
	var row []byte
	if err := db.QueryRow("SELECT account, sealed FROM iys_tokens").Scan(&account, &row); err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{s.stored.Access, s.stored.Refresh, creds.Username, creds.Password} {
		if bytes.Contains(row, []byte(secret)) || strings.Contains(account, secret) {
			t.Fatalf("the stored row shows a secret or the username in clear")
		}
	}

	other := creds
	other.Password = "another-password"
	ov, err := apiuser.New(st, sb.URL, other, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	err = ov.Update(context.Background(), func(cur iysclient.SharedTokens) (iysclient.SharedTokens, bool, error) {
		if cur.Access != "" || cur.Refresh != "" {
			t.Errorf("another password opened the tokens")
		}
		return cur, false, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The right password still opens them: the client needs no new login.
	if err := call(t, process(t, st, sb.URL, creds)); err != nil {
		t.Fatal(err)
	}
	if n := sb.Admin.Stats().Tokens.Logins; n != 1 {
		t.Fatalf("%d logins, want 1", n)
	}
}

// Two processes of one API user, each allowed 2 bulk requests a second, send
// at once to an İYS that takes 2 a second from the user: through the shared
// pace they stay within it together, and İYS throttles none.
func TestPaceShared(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Start(t, sandbox.Options{BulkRate: 2})
	st := openStore(t)
	date, err := consent.ParseDate("2025-05-15 14:23:00")
	if err != nil {
		t.Fatal(err)
	}
	const each = 5
	errs := make(chan error, 2*each)
	for p := range 2 {
		v, err := apiuser.New(st, sb.URL, creds, zap.NewNop())
		if err != nil {
			t.Fatal(err)
		}
		c := process(t, st, sb.URL, creds, iysclient.WithRateLimit(2, 1), iysclient.WithPacer(v))
		go func() {
			for i := range each {
				item := consent.Consent{Recipient: fmt.Sprintf("+90533%d%06d", p, i), RecipientType: consent.Bireysel,
					Type: consent.TypeMesaj, Status: consent.StatusOnay, ConsentDate: date, Source: consent.SourceWeb}
				_, err := c.SubmitBulk(context.Background(), "700001", "600001", []consent.Consent{item})
				errs <- err
			}
		}()
	}
	for range 2 * each {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	s := sb.Admin.Stats()
	if n := s.Requests[sandboxtest.RouteSubmitBulk]; n != 2*each {
		t.Fatalf("%d bulk requests reached İYS, want %d", n, 2*each)
	}
	if s.Throttled != 0 {
		t.Fatalf("İYS throttled %d requests: the processes together went over the user's rate", s.Throttled)
	}
}
