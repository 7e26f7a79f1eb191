package store

import (
	"context"
	"strings"
	"testing"

	"github.com/iys-sync/iys-sync/internal/consent"
	"github.com/iys-sync/iys-sync/internal/redact"
)

// Migration 0006 hides URL-shaped and key=value passwords in the error texts
// stored before errors were scrubbed, exactly as redact.Credentials does, and
// leaves other texts alone.
func TestMigrationScrubsStoredSecrets(t *testing.T) {
	s, _ := newStore(t)
	c := install(t, s, "B")
	ctx := context.Background()
	texts := []string{
		`pull: source B: import source: read rows: source query: parse "postgres://app:Src-Pw-77x%zz@127.0.0.1:5432/x": invalid URL escape "%zz"`,
		`pull: source B: source query: parse "postgres://app:pass word@db:54x32/x": invalid port ":54x32" after host`,
		`connect host=db user=app password='it\'s secret' dbname=x failed, password='it''s secret2'; password=plainPW sslmode=disable`,
		`postgresql://db/x?sslmode=disable&password=qPW&a=b refused`,
		`iys: HTTP 503: Post "http://127.0.0.1:8089/sbs/consents": refused for u***@example.com`,
		`3 records failed after 8 tries: their last error is in the report (state failed)`,
	}
	for _, text := range texts {
		if _, err := s.db.ExecContext(ctx, `INSERT INTO runs (connector_id, trigger, status, finished_at, error)
			VALUES ($1, 'run-now', 'partial', now(), $2)`, c.ID, text); err != nil {
			t.Fatal(err)
		}
	}
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	var sql0006 string
	for _, m := range ms {
		if m.version == 6 {
			sql0006 = m.sql
		}
	}
	if sql0006 == "" {
		t.Fatal("no migration 0006")
	}
	if _, err := s.db.ExecContext(ctx, sql0006); err != nil {
		t.Fatal(err)
	}
	var got []string
	if err := s.db.SelectContext(ctx, &got, "SELECT error FROM runs ORDER BY id"); err != nil {
		t.Fatal(err)
	}
	for i, text := range texts {
		if want := redact.Credentials(text); got[i] != want {
			t.Errorf("migrated\n  %s\nto\n  %s\nwant\n  %s", text, got[i], want)
		}
		for _, pw := range []string{"Src-Pw-77x", "pass word", "secret", "plainPW", "qPW"} {
			if strings.Contains(got[i], pw) {
				t.Errorf("%q left in %s", pw, got[i])
			}
		}
	}
	if got[4] != texts[4] || got[5] != texts[5] {
		t.Errorf("texts without a secret changed: %q, %q", got[4], got[5])
	}
}

// A run's error is stored scrubbed of the process's secrets and of URL
// passwords: status shows it.
func TestFinishRunScrubsError(t *testing.T) {
	s, _ := newStore(t)
	c := install(t, s, "B")
	ctx := context.Background()
	redact.Register("Run-S3cret-pw")
	id, err := s.StartRun(ctx, c.ID, consent.TriggerRunNow)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.FinishRun(ctx, id, consent.RunPartial, "pull: login Run-S3cret-pw refused; dial postgres://app:url-pw@db/x"); err != nil {
		t.Fatal(err)
	}
	var stored string
	if err := s.db.GetContext(ctx, &stored, "SELECT error FROM runs WHERE id = $1", id); err != nil {
		t.Fatal(err)
	}
	if stored != "pull: login *** refused; dial postgres://app:***@db/x" {
		t.Errorf("stored %q", stored)
	}
}
