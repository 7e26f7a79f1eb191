package intake

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	neturl "net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/iys-sync/iys-sync/internal/consent"
	"github.com/iys-sync/iys-sync/internal/pgtest"
	"github.com/iys-sync/iys-sync/internal/pgtest/storedb"
	"github.com/iys-sync/iys-sync/internal/store"
)

const oneItem = `[{"recipient":"905331234562","type":"MESAJ","status":"ONAY","consentDate":"2025-05-15 14:23:00","platform":"web"}]`

// wantUnavailable checks a 503: Retry-After in seconds, a JSON error of code.
func wantUnavailable(t *testing.T, a answer, code string) {
	t.Helper()
	wantError(t, a, http.StatusServiceUnavailable, code)
	if s := a.header.Get("Retry-After"); s == "" || strings.Trim(s, "0123456789") != "" {
		t.Fatalf("Retry-After %q", s)
	}
}

// TestDatabaseDownIs503: with the database stopped, a request is answered
// 503 with Retry-After, not 500, and the log says why without the password.
func TestDatabaseDownIs503(t *testing.T) {
	c := pgtest.Cluster(t)
	url := c.URL("postgres")
	st, err := store.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, _, err := st.InstallConnector(context.Background(), store.Connector{BrandCode: "B", IYSCode: "I-B",
		FirstSyncAt: time.Now(), Channels: []consent.Type{consent.TypeMesaj}}); err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zap.DebugLevel)
	h, err := New(st, []string{"crm:" + hashOf(tokCRM)}, zap.New(core), WithClock(func() consent.Date { return testNow }))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	e := &env{srv: srv}
	if a := e.post(t, "B", tokCRM, "application/json", []byte(oneItem)); a.status != http.StatusOK {
		t.Fatalf("database up: %d %s", a.status, a.body)
	}
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	wantUnavailable(t, e.post(t, "B", tokCRM, "application/json", []byte(oneItem)), "unavailable")
	found := false
	for _, entry := range logs.All() {
		if entry.ContextMap()["status"] == int64(http.StatusServiceUnavailable) {
			found = found || entry.ContextMap()["error"] != nil
			if strings.Contains(fmt.Sprint(entry.ContextMap()), tokCRM) {
				t.Errorf("the log holds the token: %v", entry.ContextMap())
			}
		}
	}
	if !found {
		t.Errorf("no 503 log line with its error: %v", logs.All())
	}
}

// TestLockTimeoutIs503: a record locked past lock_timeout by a stuck
// session gets 503 with Retry-After; the same request later is stored.
func TestLockTimeoutIs503(t *testing.T) {
	t.Parallel()
	u, err := neturl.Parse(storedb.NewDB(t))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("lock_timeout", "100ms") // sent to the server as a setting
	u.RawQuery = q.Encode()
	url := u.String()
	st, err := store.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, _, err := st.InstallConnector(context.Background(), store.Connector{BrandCode: "B", IYSCode: "I-B",
		FirstSyncAt: time.Now(), Channels: []consent.Type{consent.TypeMesaj}}); err != nil {
		t.Fatal(err)
	}
	h, err := New(st, []string{"crm:" + hashOf(tokCRM)}, nil, WithClock(func() consent.Date { return testNow }))
	if err != nil {
		t.Fatal(err)
	}
	e := &env{srv: httptest.NewServer(h)}
	defer e.srv.Close()
	if a := e.post(t, "B", tokCRM, "application/json", []byte(oneItem)); a.status != http.StatusOK {
		t.Fatalf("%d %s", a.status, a.body)
	}
	newer := strings.Replace(oneItem, "14:23:00", "15:00:00", 1)
	db, err := sql.Open("postgres", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	stuck, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stuck.Exec("SELECT 1 FROM consents FOR UPDATE"); err != nil {
		t.Fatal(err)
	}
	wantUnavailable(t, e.post(t, "B", tokCRM, "application/json", []byte(newer)), "unavailable")
	stuck.Rollback() //nolint:errcheck
	if a := e.post(t, "B", tokCRM, "application/json", []byte(newer)); a.status != http.StatusOK {
		t.Fatalf("after the lock: %d %s", a.status, a.body)
	}
}

// countingBody counts the bytes read of a request body.
type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

// TestBusyIs503: with every slot taken, a request waits a bounded time for
// its turn, then gets 503 with Retry-After, its body never read.
func TestBusyIs503(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, WithConcurrency(1), WithQueueWait(100*time.Millisecond))
	h := e.srv.Config.Handler.(*Handler)
	var read atomic.Int64 // of the bodies of requests marked X-Count
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Count") != "" {
			r.Body = countingBody{r.Body, &read}
		}
		h.ServeHTTP(w, r)
	}))
	defer srv.Close()
	post := func(body io.Reader, count bool) answer {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/connectors/B/consents", body)
		req.Header.Set("Authorization", "Bearer "+tokCRM)
		req.Header.Set("Content-Type", "application/json")
		if count {
			req.Header.Set("X-Count", "yes")
		}
		return do(t, req)
	}
	// The first request takes the slot and holds it: its body is slow to come.
	slow, feed := io.Pipe()
	defer feed.Close()
	first := make(chan answer, 1)
	go func() { first <- post(slow, false) }()
	if _, err := feed.Write([]byte("[")); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); len(h.slots) == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the first request never took its slot")
		}
	}
	wantUnavailable(t, post(strings.NewReader(oneItem), true), "busy")
	if n := read.Load(); n != 0 {
		t.Fatalf("%d bytes of the busy request's body were read", n)
	}
	// The first ends; the slot frees; a request is taken again.
	if _, err := feed.Write([]byte(oneItem[1:])); err != nil {
		t.Fatal(err)
	}
	feed.Close()
	if a := <-first; a.status != http.StatusOK {
		t.Fatalf("first: %d %s", a.status, a.body)
	}
	if a := post(strings.NewReader(oneItem), true); a.status != http.StatusOK || read.Load() != int64(len(oneItem)) {
		t.Fatalf("after: %d %s, %d bytes read", a.status, a.body, read.Load())
	}
}

// TestRefusalsLogTheClient: a 401 or 403 names the client's address in the
// log, and never the token presented.
func TestRefusalsLogTheClient(t *testing.T) {
	t.Parallel()
	core, logs := observer.New(zap.DebugLevel)
	e := newEnv(t, zap.New(core))
	e.post(t, "B", "not-a-token-at-all", "application/json", []byte(oneItem))
	e.post(t, "B", tokWeb, "application/json", []byte(oneItem))
	for _, status := range []int64{401, 403} {
		found := 0
		for _, entry := range logs.All() {
			m := entry.ContextMap()
			if m["status"] != status {
				continue
			}
			found++
			if c, _ := m["client"].(string); !strings.HasPrefix(c, "127.0.0.1:") {
				t.Errorf("%d: client %q in %v", status, c, m)
			}
			for _, secret := range []string{"not-a-token-at-all", tokWeb} {
				if strings.Contains(fmt.Sprint(m)+entry.Message, secret) {
					t.Errorf("%d: the log holds the token: %v", status, m)
				}
			}
		}
		if found != 1 {
			t.Errorf("%d log lines for %d", found, status)
		}
	}
}

// TestDuplicateKeysAreRefused: an item that gives a key twice, in any case,
// is refused with 422 naming the item and the key; nothing is stored.
func TestDuplicateKeysAreRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	before := e.written(t)
	for _, c := range []struct{ body, want string }{
		{`[` + oneItem[1:len(oneItem)-2] + `,"status":"RET"}]`, `item 0: the key "status" is given twice`},
		{`[` + oneItem[1:len(oneItem)-1] + `,{"recipient":"905331234563","Recipient":"905331234564"}]`, `item 1: the key "Recipient" is given twice`},
		{`[{"recipient":"905331234563","recipi\u0065nt":"905331234564"}]`, `item 0: the key "recipient" is given twice`},
	} {
		a := e.post(t, "B", tokCRM, "application/json", []byte(c.body))
		wantError(t, a, http.StatusUnprocessableEntity, "malformed_body")
		var b errorBody
		json.Unmarshal(a.body, &b) //nolint:errcheck // checked by wantError
		if b.Error.Message != c.want {
			t.Errorf("%s: %q, want %q", c.body, b.Error.Message, c.want)
		}
	}
	if after := e.written(t); after != before {
		t.Fatalf("refused requests wrote: %v -> %v", before, after)
	}
}

// TestServerTimeouts: the intake's server has every timeout.
func TestServerTimeouts(t *testing.T) {
	t.Parallel()
	s := newServer(http.NotFoundHandler(), nil, zap.NewNop()).HTTP()
	if s.ReadHeaderTimeout <= 0 || s.ReadTimeout <= 0 || s.WriteTimeout <= 0 || s.IdleTimeout <= 0 || s.MaxHeaderBytes <= 0 {
		t.Fatalf("timeouts %v %v %v %v, header bytes %d", s.ReadHeaderTimeout, s.ReadTimeout, s.WriteTimeout, s.IdleTimeout, s.MaxHeaderBytes)
	}
}

// writeCert writes a self-signed certificate for 127.0.0.1 with this serial
// and its key, as PEM files.
func writeCert(t *testing.T, certFile, keyFile string, serial int64) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "intake test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// TestTLSServesAndReloads: with a certificate and key the intake serves
// HTTPS; when the files are replaced, the next connection gets the new
// certificate with no restart; a broken replacement keeps the last good one.
func TestTLSServesAndReloads(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	first := writeCert(t, certFile, keyFile, 1)
	tlsConf, err := LoadTLS(certFile, keyFile, nil)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	addrs, done := make(chan string, 1), make(chan error, 1)
	go func() {
		done <- newServer(e.srv.Config.Handler, tlsConf, zap.NewNop()).ListenAndServe(ctx, "127.0.0.1:0", func(a string) { addrs <- a })
	}()
	addr := <-addrs
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	// get fetches the description over a new connection, trusting roots.
	get := func(roots ...*x509.Certificate) (*x509.Certificate, error) {
		pool := x509.NewCertPool()
		for _, r := range roots {
			pool.AddCert(r)
		}
		c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true,
			TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
		resp, err := c.Get("https://" + addr + "/v1/openapi.json")
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("status %d", resp.StatusCode)
		}
		return resp.TLS.PeerCertificates[0], nil
	}
	if got, err := get(first); err != nil || got.SerialNumber.Int64() != 1 {
		t.Fatalf("first certificate: %v %v", got, err)
	}
	// Plain HTTP is not served on the TLS port.
	if resp, err := http.Get("http://" + addr + "/v1/openapi.json"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Fatal("plain HTTP answered on the TLS listener")
		}
	}

	// A renewal: new files (their time moved on, as a rewrite within the
	// same clock tick may not).
	second := writeCert(t, certFile, keyFile, 2)
	later := time.Now().Add(time.Minute)
	for _, f := range []string{certFile, keyFile} {
		if err := os.Chtimes(f, later, later); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := get(second); err != nil || got.SerialNumber.Int64() != 2 {
		t.Fatalf("after the renewal: %v %v", got, err)
	}
	// A broken rewrite (a key that is not PEM) keeps the second certificate.
	if err := os.WriteFile(keyFile, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := get(second); err != nil || got.SerialNumber.Int64() != 2 {
		t.Fatalf("after a broken rewrite: %v %v", got, err)
	}
}

func TestLoadTLSChecksItsFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	writeCert(t, certFile, keyFile, 1)
	if c, err := LoadTLS("", "", nil); c != nil || err != nil {
		t.Fatalf("neither: %v %v, want plain HTTP", c, err)
	}
	for _, pair := range [][2]string{{certFile, ""}, {"", keyFile}, {certFile, filepath.Join(dir, "missing")}, {keyFile, keyFile}} {
		_, err := LoadTLS(pair[0], pair[1], nil)
		if err == nil || !strings.Contains(err.Error(), "IYS_INTAKE_TLS_CERT") || !strings.Contains(err.Error(), "IYS_INTAKE_TLS_KEY") {
			t.Errorf("%q: err = %v, want one naming both variables", pair, err)
		}
	}
}
