package iysclient_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iys-sync/iys-sync/internal/consent"
	"github.com/iys-sync/iys-sync/internal/iysclient"
	"github.com/iys-sync/iys-sync/internal/iysclient/iysclienttest"
	"github.com/iys-sync/iys-sync/internal/sandbox"
	"github.com/iys-sync/iys-sync/internal/sandbox/sandboxtest"
)

// TestSandboxLogin: one login serves every call of a client, also
// concurrent ones; a wrong password is ErrLoginRefused, tried once.
func TestSandboxLogin(t *testing.T) {
	t.Parallel()
	e := startSandbox(t, sandbox.Options{})
	ctx := context.Background()
	c := e.client()

	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := c.AddConsent(ctx, sbIYS, sbBrand, onay(phone(i), e.clock.ago(time.Hour)))
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("AddConsent: %v", err)
		}
	}
	s := e.admin.Stats()
	if s.Tokens.Logins != 1 || s.Tokens.Refreshes != 0 || s.Unauthorized != 0 {
		t.Fatalf("8 concurrent calls: %d logins, %d refreshes, %d 401s; want one login, shared", s.Tokens.Logins, s.Tokens.Refreshes, s.Unauthorized)
	}
	if s.Recorded != 8 {
		t.Fatalf("recorded %d, want 8", s.Recorded)
	}

	bad := iysclienttest.New(t, e.url, iysclient.Credentials{Username: sbUser, Password: "wrong"})
	_, err := bad.Brands(ctx, sbIYS)
	if !errors.Is(err, iysclient.ErrLoginRefused) {
		t.Fatalf("wrong password: %v, want ErrLoginRefused", err)
	}
	if cl := iysclient.ErrorClass(err); cl != consent.ClassConfiguration {
		t.Fatalf("wrong password: class %s, want configuration", cl)
	}
	if strings.Contains(err.Error(), "wrong") {
		t.Fatalf("error shows the password: %v", err)
	}
	s2 := e.admin.Stats()
	if got := s2.Requests[sandboxtest.RouteToken] - s.Requests[sandboxtest.RouteToken]; got != 1 {
		t.Fatalf("a refused login was tried %d times, want once", got)
	}
}

// TestSandboxSingleConsent covers AddConsent, ConsentStatus (found and
// ErrNoRecord) and RecipientsStatus.
func TestSandboxSingleConsent(t *testing.T) {
	t.Parallel()
	e := startSandbox(t, sandbox.Options{})
	ctx := context.Background()
	c := e.client()

	first := onay(phone(1), e.clock.ago(2*time.Hour))
	tx1 := mustAdd(t, c, sbBrand, first)
	second := ret(phone(1), e.clock.ago(time.Hour))
	second.Source = consent.SourceCagriMerkezi
	tx2 := mustAdd(t, c, sbBrand, second)
	if tx1.TransactionID == tx2.TransactionID {
		t.Fatalf("two consents got one transaction id %q", tx1.TransactionID)
	}
	if d := e.clock.Now().Sub(tx2.CreationDate.Time()); d < 0 || d > 5*time.Second {
		t.Fatalf("creationDate %s is not the sandbox's now %s (wrong zone?)", tx2.CreationDate, consent.NewDate(e.clock.Now()))
	}
	mail := consent.Consent{Recipient: "Ayse.Yilmaz@Example.COM", RecipientType: consent.Tacir, Type: consent.TypeEposta,
		Status: consent.StatusOnay, ConsentDate: e.clock.ago(30 * time.Minute), Source: consent.SourceEposta}
	txMail := mustAdd(t, c, sbBrand, mail)
	mustAdd(t, c, sbBrand, onay(phone(2), e.clock.ago(time.Hour)))
	// A date made in UTC goes to İYS in Türkiye time: 05:00 UTC is 08:00.
	utc := onay(phone(3), consent.NewDate(time.Date(2025, 5, 14, 5, 0, 0, 0, time.UTC)))
	utc.Type = consent.TypeArama
	mustAdd(t, c, sbBrand, utc)
	if r := e.admin.Held(sbBrand)[recKey(utc)]; r.ConsentDate != "2025-05-14 08:00:00" {
		t.Fatalf("a consent given at 05:00 UTC is recorded at %q, want 2025-05-14 08:00:00 (Türkiye time)", r.ConsentDate)
	}

	rec, err := c.ConsentStatus(ctx, sbIYS, sbBrand, iysclient.StatusQuery{Recipient: phone(1),
		RecipientType: consent.Bireysel, Type: consent.TypeMesaj})
	if err != nil {
		t.Fatalf("ConsentStatus: %v", err)
	}
	want := iysclient.Record{Recipient: phone(1), RecipientType: consent.Bireysel, Type: consent.TypeMesaj,
		Status: consent.StatusRet, Source: consent.SourceCagriMerkezi, ConsentDate: second.ConsentDate,
		CreationDate: tx2.CreationDate, TransactionID: tx2.TransactionID}
	if !recordEqual(*rec, want) {
		t.Fatalf("ConsentStatus = %+v, want %+v", *rec, want)
	}

	// Emails are one record whatever their case.
	rec, err = c.ConsentStatus(ctx, sbIYS, sbBrand, iysclient.StatusQuery{Recipient: "ayse.yilmaz@example.com",
		RecipientType: consent.Tacir, Type: consent.TypeEposta})
	if err != nil {
		t.Fatalf("ConsentStatus(email): %v", err)
	}
	if rec.Status != consent.StatusOnay || rec.TransactionID != txMail.TransactionID || !rec.ConsentDate.Equal(mail.ConsentDate) {
		t.Fatalf("ConsentStatus(email) = %+v, want the ONAY of transaction %s", *rec, txMail.TransactionID)
	}

	// No record: the same recipient as another type, or as TACIR.
	for _, q := range []iysclient.StatusQuery{
		{Recipient: phone(1), RecipientType: consent.Bireysel, Type: consent.TypeArama},
		{Recipient: phone(1), RecipientType: consent.Tacir, Type: consent.TypeMesaj},
		{Recipient: phone(99), RecipientType: consent.Bireysel, Type: consent.TypeMesaj},
	} {
		_, err := c.ConsentStatus(ctx, sbIYS, sbBrand, q)
		if !errors.Is(err, iysclient.ErrNoRecord) {
			t.Fatalf("ConsentStatus(%+v): %v, want ErrNoRecord", q, err)
		}
		if apiError(t, err).Status != http.StatusNotFound {
			t.Fatalf("ConsentStatus(%+v): %v, want 404", q, err)
		}
	}

	// Only ONAY holders are listed, as sent.
	got, err := c.RecipientsStatus(ctx, sbIYS, sbBrand, consent.Bireysel, consent.TypeMesaj,
		[]string{phone(1), phone(2), phone(3)})
	if err != nil {
		t.Fatalf("RecipientsStatus: %v", err)
	}
	if !slices.Equal(got, []string{phone(2)}) {
		t.Fatalf("RecipientsStatus = %v, want only %s (ONAY); %s holds RET, %s nothing", got, phone(2), phone(1), phone(3))
	}
	got, err = c.RecipientsStatus(ctx, sbIYS, sbBrand, consent.Tacir, consent.TypeEposta,
		[]string{"AYSE.YILMAZ@example.com", "nobody@example.com"})
	if err != nil {
		t.Fatalf("RecipientsStatus(email): %v", err)
	}
	if !slices.Equal(got, []string{"AYSE.YILMAZ@example.com"}) {
		t.Fatalf("RecipientsStatus(email) = %v, want the one ONAY holder as sent", got)
	}
	got, err = c.RecipientsStatus(ctx, sbIYS, sbBrand, consent.Bireysel, consent.TypeArama, []string{phone(2)})
	if err != nil || len(got) != 0 {
		t.Fatalf("RecipientsStatus(ARAMA) = %v, %v; want none: the ONAY is for MESAJ", got, err)
	}

	// What İYS holds agrees with what the client was told.
	recs := e.admin.Held(sbBrand)
	if len(recs) != 4 {
		t.Fatalf("sandbox holds %d records, want 4: %v", len(recs), sortedKeys(recs))
	}
	if r := recs[recKey(second)]; r.Status != "RET" || r.TransactionID != tx2.TransactionID {
		t.Fatalf("sandbox holds %+v for %s, want the RET of %s", r, phone(1), tx2.TransactionID)
	}
}

func recordEqual(a, b iysclient.Record) bool {
	return a.Recipient == b.Recipient && a.RecipientType == b.RecipientType && a.Type == b.Type &&
		a.Status == b.Status && a.Source == b.Source && a.ConsentDate.Equal(b.ConsentDate) &&
		a.CreationDate.Equal(b.CreationDate) && a.TransactionID == b.TransactionID
}

// TestSandboxBrandsAndRights covers Brands and IntegratorRights, a brand
// without partnership (403, configuration, not retried) and a withdrawn
// right.
func TestSandboxBrandsAndRights(t *testing.T) {
	t.Parallel()
	const (
		brand2     = "800200"
		denied     = "800300"
		integrator = "INT-42"
	)
	e := startSandbox(t, sandbox.Options{
		IntegratorCode: integrator,
		Brands: []sandbox.Brand{{IYSCode: sbIYS, BrandCode: sbBrand, Name: "Main Brand", Master: true},
			{IYSCode: sbIYS, BrandCode: brand2, Name: "Second"}, {IYSCode: sbIYS, BrandCode: denied}},
		DenyBrands: []string{denied},
		Rights:     []sandbox.RightRule{{BrandCode: brand2, Type: consent.TypeArama, Right: sandbox.RightWrite, Granted: false}},
	})
	ctx := context.Background()
	c := e.client()
	mustAdd(t, c, sbBrand, onay(phone(1), e.clock.ago(time.Hour)))
	mustAdd(t, c, sbBrand, onay(phone(2), e.clock.ago(2*time.Hour)))
	mustAdd(t, c, sbBrand, ret(phone(2), e.clock.ago(time.Hour)))

	brands, err := c.Brands(ctx, sbIYS)
	if err != nil {
		t.Fatalf("Brands: %v", err)
	}
	if len(brands) != 2 || brands[0].BrandCode != sbBrand || brands[1].BrandCode != brand2 {
		t.Fatalf("Brands = %+v, want %s and %s (not the denied %s)", brands, sbBrand, brand2, denied)
	}
	if !brands[0].Master || brands[0].Name != "Main Brand" || brands[1].Master || brands[1].Name != "Second" {
		t.Fatalf("Brands = %+v, want the main brand master and named", brands)
	}
	var stats map[consent.Type]struct{ Onay, Ret int }
	mustJSON(t, brands[0].Stats, &stats)
	if m := stats[consent.TypeMesaj]; m.Onay != 1 || m.Ret != 1 {
		t.Fatalf("Brands stats for MESAJ = %+v, want 1 ONAY and 1 RET held (%s)", m, brands[0].Stats)
	}

	raw, err := c.IntegratorRights(ctx, integrator, sbIYS)
	if err != nil {
		t.Fatalf("IntegratorRights: %v", err)
	}
	var rights struct {
		IntegratorCode string `json:"integratorCode"`
		Brands         []struct {
			BrandCode string `json:"brandCode"`
			Rights    []struct {
				Type             consent.Type
				Read, Write      bool
				AgreementControl bool `json:"agreementControl"`
			} `json:"rights"`
		} `json:"brands"`
	}
	mustJSON(t, raw, &rights)
	if rights.IntegratorCode != integrator || len(rights.Brands) != 3 {
		t.Fatalf("IntegratorRights = %s, want the 3 brands of %s", raw, sbIYS)
	}
	for _, b := range rights.Brands {
		if len(b.Rights) != 3 {
			t.Fatalf("IntegratorRights: brand %s has %d types, want 3: %s", b.BrandCode, len(b.Rights), raw)
		}
		for _, r := range b.Rights {
			wantWrite := b.BrandCode != denied && !(b.BrandCode == brand2 && r.Type == consent.TypeArama)
			if r.Write != wantWrite {
				t.Fatalf("IntegratorRights: %s %s write=%v, want %v: %s", b.BrandCode, r.Type, r.Write, wantWrite, raw)
			}
		}
	}
	_, err = c.IntegratorRights(ctx, "INT-OTHER", sbIYS)
	wantAPIError(t, "IntegratorRights(another integrator)", err, http.StatusForbidden, consent.CodeNotPermitted2, consent.ClassConfiguration)

	// A denied brand: 403 H353 on every path, never retried, nothing recorded.
	before := e.admin.Stats()
	_, err = c.AddConsent(ctx, sbIYS, denied, onay(phone(3), e.clock.ago(time.Hour)))
	wantAPIError(t, "AddConsent(denied brand)", err, http.StatusForbidden, consent.CodeNotPermitted, consent.ClassConfiguration)
	_, err = c.SubmitBulk(ctx, sbIYS, denied, []consent.Consent{onay(phone(3), e.clock.ago(time.Hour))})
	wantAPIError(t, "SubmitBulk(denied brand)", err, http.StatusForbidden, consent.CodeNotPermitted, consent.ClassConfiguration)
	_, err = c.Changes(ctx, sbIYS, denied, iysclient.ChangesQuery{Source: iysclient.ChangesByCitizens})
	wantAPIError(t, "Changes(denied brand)", err, http.StatusForbidden, consent.CodeNotPermitted, consent.ClassConfiguration)
	after := e.admin.Stats()
	if got := after.Requests[sandboxtest.RouteAddConsent] - before.Requests[sandboxtest.RouteAddConsent]; got != 1 {
		t.Fatalf("a 403 was sent %d times, want once: no retry mends missing rights", got)
	}
	if got := after.Requests[sandboxtest.RouteSubmitBulk] - before.Requests[sandboxtest.RouteSubmitBulk]; got != 1 {
		t.Fatalf("a refused bulk request was sent %d times, want once", got)
	}
	if after.Forbidden-before.Forbidden != 3 || len(e.admin.Held(denied)) != 0 {
		t.Fatalf("denied brand: %d 403s, %d records; want 3 and none", after.Forbidden-before.Forbidden, len(e.admin.Held(denied)))
	}

	// A withdrawn right: ARAMA on brand2 is refused, MESAJ is not.
	call := onay(phone(4), e.clock.ago(time.Hour))
	call.Type = consent.TypeArama
	_, err = c.AddConsent(ctx, sbIYS, brand2, call)
	wantAPIError(t, "AddConsent(ARAMA without write right)", err, http.StatusForbidden, consent.CodeNotPermitted, consent.ClassConfiguration)
	mustAdd(t, c, brand2, onay(phone(4), e.clock.ago(time.Hour)))
}

type change struct {
	recipient string
	status    consent.Status
	source    consent.Source
	txn       string
}

// entries decodes a feed page's entries, each of which must be readable.
func entries(t *testing.T, raw []json.RawMessage) []iysclient.Record {
	t.Helper()
	out := make([]iysclient.Record, len(raw))
	for i, e := range raw {
		r, err := iysclient.DecodeChange(e)
		if err != nil {
			t.Fatalf("feed entry %d: %v", i, err)
		}
		out[i] = r
	}
	return out
}

func changesOf(list []iysclient.Record) []change {
	out := make([]change, len(list))
	for i, r := range list {
		out[i] = change{r.Recipient, r.Status, r.Source, r.TransactionID}
	}
	return out
}

// TestSandboxChangesFeed covers Changes: the citizens' side (IYS) and the
// brand's (HS), paging with Limit and the returned cursor, and the cursor
// of the last page seeing only what came after it.
func TestSandboxChangesFeed(t *testing.T) {
	t.Parallel()
	e := startSandbox(t, sandbox.Options{})
	ctx := context.Background()
	c := e.client()

	var hs []change
	for i := 1; i <= 5; i++ {
		cn := onay(phone(i), e.clock.ago(time.Hour))
		tx := mustAdd(t, c, sbBrand, cn)
		hs = append(hs, change{cn.Recipient, consent.StatusOnay, consent.SourceWeb, tx.TransactionID})
	}
	cit := e.citizen(sbBrand, phone(2), consent.TypeMesaj, consent.StatusRet, consent.SourceIYSMobil)
	cit2 := e.citizen(sbBrand, phone(77), consent.TypeMesaj, consent.StatusOnay, consent.SourceIYS3338)

	// The citizens' side: only the two changes made through İYS.
	page, err := c.Changes(ctx, sbIYS, sbBrand, iysclient.ChangesQuery{Source: iysclient.ChangesByCitizens})
	if err != nil {
		t.Fatalf("Changes(IYS): %v", err)
	}
	wantIYS := []change{{phone(2), consent.StatusRet, consent.SourceIYSMobil, cit.TransactionID},
		{phone(77), consent.StatusOnay, consent.SourceIYS3338, cit2.TransactionID}}
	if got := changesOf(entries(t, page.Entries)); !slices.Equal(got, wantIYS) {
		t.Fatalf("Changes(IYS) = %+v, want %+v", got, wantIYS)
	}
	if first := entries(t, page.Entries)[0]; page.After == "" || first.CreationDate.IsZero() || first.ConsentDate.IsZero() {
		t.Fatalf("Changes(IYS): cursor %q, first %+v: want a cursor and dates", page.After, first)
	}
	iysCursor := page.After

	// The brand's side, two at a time.
	var got []change
	after := ""
	pages := 0
	for {
		p, err := c.Changes(ctx, sbIYS, sbBrand, iysclient.ChangesQuery{Source: iysclient.ChangesByBrand, After: after, Limit: 2})
		if err != nil {
			t.Fatalf("Changes(HS, page %d): %v", pages+1, err)
		}
		if len(p.Entries) > 2 {
			t.Fatalf("Changes(HS, limit 2) gave %d changes", len(p.Entries))
		}
		if p.After == "" || p.After == after && len(p.Entries) > 0 {
			t.Fatalf("Changes(HS, page %d): cursor %q after %q", pages+1, p.After, after)
		}
		after = p.After
		if len(p.Entries) == 0 {
			break
		}
		pages++
		got = append(got, changesOf(entries(t, p.Entries))...)
		if pages > 5 {
			t.Fatal("Changes(HS): the feed does not end")
		}
	}
	if pages != 3 || !slices.Equal(got, hs) {
		t.Fatalf("Changes(HS) in %d pages = %+v, want 3 pages of %+v", pages, got, hs)
	}

	// The last cursors see nothing new...
	for src, cur := range map[iysclient.ChangeSource]string{iysclient.ChangesByBrand: after, iysclient.ChangesByCitizens: iysCursor} {
		p, err := c.Changes(ctx, sbIYS, sbBrand, iysclient.ChangesQuery{Source: src, After: cur})
		if err != nil || len(p.Entries) != 0 || p.After == "" {
			t.Fatalf("Changes(%s) after the last cursor = %+v, %v; want nothing new and a cursor", src, p, err)
		}
	}
	// ...until something happens, and then only that.
	tx := mustAdd(t, c, sbBrand, ret(phone(5), e.clock.ago(time.Minute)))
	cit3 := e.citizen(sbBrand, phone(1), consent.TypeMesaj, consent.StatusRet, consent.SourceIYSWeb)
	p, err := c.Changes(ctx, sbIYS, sbBrand, iysclient.ChangesQuery{Source: iysclient.ChangesByBrand, After: after})
	if err != nil {
		t.Fatalf("Changes(HS) after a new consent: %v", err)
	}
	if want := []change{{phone(5), consent.StatusRet, consent.SourceWeb, tx.TransactionID}}; !slices.Equal(changesOf(entries(t, p.Entries)), want) {
		t.Fatalf("Changes(HS) after the last cursor = %+v, want only %+v", changesOf(entries(t, p.Entries)), want)
	}
	p, err = c.Changes(ctx, sbIYS, sbBrand, iysclient.ChangesQuery{Source: iysclient.ChangesByCitizens, After: iysCursor})
	if err != nil {
		t.Fatalf("Changes(IYS) after a new citizen change: %v", err)
	}
	if want := []change{{phone(1), consent.StatusRet, consent.SourceIYSWeb, cit3.TransactionID}}; !slices.Equal(changesOf(entries(t, p.Entries)), want) {
		t.Fatalf("Changes(IYS) after the last cursor = %+v, want only %+v", changesOf(entries(t, p.Entries)), want)
	}

	// A cursor is opaque and bound to its side: the HS one is refused for IYS.
	_, err = c.Changes(ctx, sbIYS, sbBrand, iysclient.ChangesQuery{Source: iysclient.ChangesByCitizens, After: after})
	if apiErr := apiError(t, err); apiErr.Status != http.StatusBadRequest {
		t.Fatalf("Changes(IYS) with the HS cursor: %v, want 400", err)
	}
}

// TestSandboxChangeFileAndSummary covers ChangeFile with ReadChangeFile
// and ChangeSummary: a day's file exists once the day is over.
func TestSandboxChangeFileAndSummary(t *testing.T) {
	t.Parallel()
	e := startSandbox(t, sandbox.Options{TokenTTL: 72 * time.Hour, RefreshTTL: 96 * time.Hour})
	ctx := context.Background()
	c := e.client()

	var want []change
	for i := 1; i <= 3; i++ {
		cn := onay(phone(i), e.clock.ago(time.Hour))
		tx := mustAdd(t, c, sbBrand, cn)
		want = append(want, change{cn.Recipient, consent.StatusOnay, consent.SourceWeb, tx.TransactionID})
	}
	cit := e.citizen(sbBrand, phone(1), consent.TypeMesaj, consent.StatusRet, consent.SourceIYSMobil)
	want = append(want, change{phone(1), consent.StatusRet, consent.SourceIYSMobil, cit.TransactionID})
	mail := consent.Consent{Recipient: "ali@example.com", RecipientType: consent.Tacir, Type: consent.TypeEposta,
		Status: consent.StatusOnay, ConsentDate: e.clock.ago(time.Hour), Source: consent.SourceEposta}
	tx := mustAdd(t, c, sbBrand, mail)
	want = append(want, change{mail.Recipient, consent.StatusOnay, consent.SourceEposta, tx.TransactionID})

	today := e.clock.Now()
	// Today is not over: İYS has no file for it yet.
	_, err := c.ChangeFile(ctx, sbIYS, sbBrand, today)
	if apiErr := apiError(t, err); apiErr.Status != http.StatusNotFound {
		t.Fatalf("ChangeFile(today): %v, want 404 until the day is over", err)
	}

	e.clock.Jump(24 * time.Hour) // tomorrow: today's file is made
	rc, err := c.ChangeFile(ctx, sbIYS, sbBrand, today)
	if err != nil {
		t.Fatalf("ChangeFile(yesterday): %v", err)
	}
	rows, err := iysclient.ReadChangeFile(rc)
	if cerr := rc.Close(); cerr != nil {
		t.Fatal(cerr)
	}
	if err != nil {
		t.Fatalf("ReadChangeFile: %v", err)
	}
	got := make([]change, len(rows))
	for i, r := range rows {
		got[i] = change{r.Record.Recipient, r.Record.Status, r.Record.Source, r.Record.TransactionID}
		if r.Line != i+2 || r.Record.ConsentDate.IsZero() || r.Record.CreationDate.IsZero() || r.Record.RecipientType == "" || r.Record.Type == "" {
			t.Fatalf("ReadChangeFile row %d = %+v: want line %d and every column read", i, r, i+2)
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("ChangeFile rows = %+v, want %+v (both sides, in creation order)", got, want)
	}
	if d := rows[0].Record.CreationDate.Time().In(consent.Istanbul); d.Day() != today.In(consent.Istanbul).Day() {
		t.Fatalf("ChangeFile(%s) holds a change created %s", today, d)
	}

	// The day before has no change: a file with its header only.
	rc, err = c.ChangeFile(ctx, sbIYS, sbBrand, today.AddDate(0, 0, -1))
	if err != nil {
		t.Fatalf("ChangeFile(the day before): %v", err)
	}
	body, _ := io.ReadAll(rc)
	rc.Close()
	rows, err = iysclient.ReadChangeFile(strings.NewReader(string(body)))
	if err != nil || len(rows) != 0 {
		t.Fatalf("ChangeFile(the day before) = %q: %d rows, %v; want a header and no row", body, len(rows), err)
	}

	type row struct {
		Type   consent.Type   `json:"type"`
		Source consent.Source `json:"source"`
		Onay   int            `json:"onay"`
		Ret    int            `json:"ret"`
		Total  int            `json:"total"`
	}
	summary := func(rt consent.RecipientType) []row {
		t.Helper()
		raw, err := c.ChangeSummary(ctx, sbIYS, sbBrand, today, rt)
		if err != nil {
			t.Fatalf("ChangeSummary(%s): %v", rt, err)
		}
		var s struct {
			ReportDate string `json:"reportDate"`
			List       []row  `json:"list"`
		}
		if err := json.Unmarshal(raw, &s); err != nil {
			t.Fatalf("ChangeSummary(%s) = %s: %v", rt, raw, err)
		}
		if s.ReportDate != today.In(consent.Istanbul).Format(iysclient.ReportDateLayout) {
			t.Fatalf("ChangeSummary(%s) is of %q, want %s", rt, s.ReportDate, today.In(consent.Istanbul).Format(iysclient.ReportDateLayout))
		}
		return s.List
	}
	wantB := []row{{consent.TypeMesaj, consent.SourceWeb, 3, 0, 3}, {consent.TypeMesaj, consent.SourceIYSMobil, 0, 1, 1}}
	if got := summary(consent.Bireysel); !slices.Equal(got, wantB) {
		t.Fatalf("ChangeSummary(BIREYSEL) = %+v, want %+v", got, wantB)
	}
	wantT := []row{{consent.TypeEposta, consent.SourceEposta, 1, 0, 1}}
	if got := summary(consent.Tacir); !slices.Equal(got, wantT) {
		t.Fatalf("ChangeSummary(TACIR) = %+v, want %+v", got, wantT)
	}
}
