package main

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/iys-sync/iys-sync/internal/config"
	"github.com/iys-sync/iys-sync/internal/consent"
	"github.com/iys-sync/iys-sync/internal/history"
	"github.com/iys-sync/iys-sync/internal/store"
)

// runHistory prints the story of one recipient's consents. It is the
// operator's own question about one citizen, so the recipient is whole.
func runHistory(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "history")
	cf := settingFlags(fs, config.Database)
	brand := fs.String("brand-code", "", "the connector's brand code")
	recipient := fs.String("recipient", "", "the phone number or email address")
	typ := fs.String("type", "", "only this consent type: MESAJ, ARAMA or EPOSTA")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := noOperands(fs, args); err != nil {
		return err
	}
	if err := checkCode("brand-code", *brand); err != nil {
		return err
	}
	rec, err := recipientArg(*recipient)
	if err != nil {
		return err
	}
	if *typ != "" && !slices.Contains(consent.Types, consent.Type(*typ)) {
		return usagef("--type %q: want MESAJ, ARAMA or EPOSTA", *typ)
	}
	_, st, c, err := loadConnector(ctx, e, cf, *brand)
	if err != nil {
		return err
	}
	defer st.Close()
	evs, err := st.History(ctx, c.ID, rec, *typ)
	if err != nil {
		return err
	}
	story := history.Of(rec, evs)
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetEscapeHTML(false)
		return enc.Encode(story)
	}
	_, err = fmt.Fprint(e.stdout, story.Text())
	return err
}

// verifyJSON is verify --json's output.
type verifyJSON struct {
	BrandCode string         `json:"brandCode"`
	Records   int            `json:"records"`
	Events    int            `json:"events"`
	Broken    []brokenRecord `json:"broken"`
}

// brokenRecord is a record whose history does not hold, its recipient
// masked (the output may end up in a log).
type brokenRecord struct {
	ID        int64  `json:"id"`
	Recipient string `json:"recipient"`
	Type      string `json:"type"`
	Problem   string `json:"problem"`
}

// runVerify walks the event chains of a connector's records and names the
// records whose history was changed behind the writers' back: exit 3 if any.
func runVerify(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "verify")
	cf := settingFlags(fs, config.Database)
	brand := fs.String("brand-code", "", "the connector's brand code")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := noOperands(fs, args); err != nil {
		return err
	}
	if err := checkCode("brand-code", *brand); err != nil {
		return err
	}
	_, st, c, err := loadConnector(ctx, e, cf, *brand)
	if err != nil {
		return err
	}
	defer st.Close()
	v, err := st.VerifyChains(ctx, c.ID)
	if err != nil {
		return err
	}
	out := verifyJSON{BrandCode: c.BrandCode, Records: v.Records, Events: v.Events, Broken: []brokenRecord{}}
	for _, b := range v.Broken {
		out.Broken = append(out.Broken, brokenRecord{ID: b.ID, Recipient: consent.MaskRecipient(b.Recipient),
			Type: b.Type, Problem: problem(b)})
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(out); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(e.stdout, "%s: %s, %s walked\n", c.BrandCode, plural(v.Records, "record", "records"), plural(v.Events, "event", "events"))
		for _, b := range out.Broken {
			fmt.Fprintf(e.stdout, "  record %d (%s %s): %s\n", b.ID, b.Type, b.Recipient, b.Problem)
		}
		if len(out.Broken) == 0 {
			fmt.Fprintln(e.stdout, "every history holds")
		}
	}
	if len(out.Broken) > 0 {
		return &partialError{msg: fmt.Sprintf("%s whose history was changed outside iys-sync", plural(len(out.Broken), "record", "records"))}
	}
	return nil
}

// problem says what is wrong with a record's history.
func problem(b store.Broken) string {
	var ps []string
	if b.FirstBad > 0 {
		ps = append(ps, fmt.Sprintf("event %d does not match its hash (edited, or inserted by hand)", b.FirstBad))
	}
	if b.FirstGap > 0 {
		ps = append(ps, fmt.Sprintf("events before event %d are missing (deleted)", b.FirstGap))
	}
	if b.HeadSeq != b.LastSeq || !b.HeadOK {
		ps = append(ps, fmt.Sprintf("the record's last event is %d, its history ends at %d (events deleted or added at the end)", b.HeadSeq, b.LastSeq))
	}
	if !b.ValueOK {
		ps = append(ps, "the record's value is not its last event's (changed without an event)")
	}
	return strings.Join(ps, "; ")
}

// recipientArg checks --recipient as history and forget take it: a phone
// number (digits or E.164) or an email address, normalised as stored.
func recipientArg(v string) (string, error) {
	if v == "" {
		return "", usagef("--recipient is required")
	}
	rec, err := history.Recipient(v)
	if err != nil {
		return "", usagef("--recipient %v", err)
	}
	return rec, nil
}
