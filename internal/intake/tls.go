package intake

import (
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"go.uber.org/zap"
)

// LoadTLS makes the intake's TLS configuration from IYS_INTAKE_TLS_CERT and
// IYS_INTAKE_TLS_KEY (PEM files): nil when both are empty (plain HTTP), an
// error naming them when only one is set or the pair does not load, so that
// serve stops before any work. The pair is read again at the first
// handshake after either file changes, so that a renewed certificate (a
// cert-manager rotation rewrites the mounted files) is served without a
// restart; until a changed pair loads, the last good one stays in use.
func LoadTLS(certFile, keyFile string, log *zap.Logger) (*tls.Config, error) {
	if certFile == "" && keyFile == "" {
		return nil, nil
	}
	if certFile == "" || keyFile == "" {
		return nil, errors.New("IYS_INTAKE_TLS_CERT and IYS_INTAKE_TLS_KEY: set both (HTTPS) or neither (plain HTTP)")
	}
	if log == nil {
		log = zap.NewNop()
	}
	r := &certReloader{certFile: certFile, keyFile: keyFile, log: log}
	if err := r.load(); err != nil {
		return nil, fmt.Errorf("IYS_INTAKE_TLS_CERT and IYS_INTAKE_TLS_KEY: %w", err)
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: r.get}, nil
}

// fileStamp tells whether a file changed: its modification time and size.
type fileStamp struct {
	mod  time.Time
	size int64
}

// certReloader holds the certificate in use and the stamps of its files.
type certReloader struct {
	certFile, keyFile string
	log               *zap.Logger

	mu     sync.Mutex
	cert   *tls.Certificate
	loaded [2]fileStamp // the files of cert
	failed [2]fileStamp // the files that last failed to load, not to log them again
}

func (r *certReloader) stamps() ([2]fileStamp, error) {
	var s [2]fileStamp
	for i, f := range []string{r.certFile, r.keyFile} {
		fi, err := os.Stat(f)
		if err != nil {
			return s, err
		}
		s[i] = fileStamp{fi.ModTime(), fi.Size()}
	}
	return s, nil
}

// load reads the pair if its files changed since the last load.
func (r *certReloader) load() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	st, err := r.stamps()
	if err != nil {
		return err
	}
	if r.cert != nil && st == r.loaded {
		return nil
	}
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		if r.cert != nil && st != r.failed {
			r.failed = st
			r.log.Warn("intake TLS: the changed certificate files do not load; the previous certificate stays in use",
				zap.String("cert", r.certFile), zap.Error(err))
		}
		return err
	}
	if r.cert != nil {
		r.log.Info("intake TLS: certificate reloaded", zap.String("cert", r.certFile))
	}
	r.cert, r.loaded = &cert, st
	return nil
}

// get is tls.Config.GetCertificate: the current pair, reloaded if changed
// (two stat calls a handshake).
func (r *certReloader) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.load() //nolint:errcheck // logged by load; the last good pair stays
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cert, nil
}
