// Package rights asks İYS whether this API user may work for a brand: write
// consents of each channel and reconcile (Mutabakat Yönetimi). When it may
// not, the error says exactly what to turn on in the İYS panel.
package rights

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/iys-sync/iys-sync/internal/consent"
	"github.com/iys-sync/iys-sync/internal/iysclient"
)

// IYS is what the check asks of İYS.
type IYS interface {
	Brands(ctx context.Context, iysCode string) ([]iysclient.Brand, error)
	IntegratorRights(ctx context.Context, integratorCode, iysCode string) (json.RawMessage, error)
	Changes(ctx context.Context, iysCode, brandCode string, q iysclient.ChangesQuery) (*iysclient.ChangesPage, error)
}

// Request names the brand and what the connector will do for it.
type Request struct {
	IntegratorCode string // empty: the brand's own API user
	IYSCode        string
	BrandCode      string
	Channels       []consent.Type
}

// Missing is a refusal: the things to turn on in the İYS panel, or, when
// İYS lists no such brand for this API user, the causes to look into.
type Missing struct {
	Request Request
	// NotListed: İYS lists no such brand for this API user. Either the codes
	// are wrong, or the brand has not made this partner its solution partner
	// yet; İYS does not tell which.
	NotListed bool
	Steps     []string
}

func (m *Missing) Error() string {
	r := m.Request
	who := "this API user"
	if r.IntegratorCode != "" {
		who = "solution partner " + r.IntegratorCode
	}
	head := fmt.Sprintf("İYS does not let %s work for brand %s (İYS code %s). In the İYS panel, the brand must:", who, r.BrandCode, r.IYSCode)
	if m.NotListed {
		head = fmt.Sprintf("İYS lists no brand %s under İYS code %s for %s. Either:", r.BrandCode, r.IYSCode, who)
	}
	return head + "\n  - " + strings.Join(m.Steps, "\n  - ") +
		"\nThen run install again (or pass --skip-verify to install without this check)."
}

// Check asks İYS and returns nil, a *Missing, or the error of a call that
// could not be made. Codes that are not codes are refused before any call.
func Check(ctx context.Context, iys IYS, r Request) error {
	for _, c := range []struct{ name, v string }{{"brand code", r.BrandCode}, {"İYS code", r.IYSCode}} {
		if err := consent.CheckCode(c.v); err != nil {
			return fmt.Errorf("%s: %w", c.name, err)
		}
	}
	check := ownCheck
	if r.IntegratorCode != "" {
		if err := consent.CheckCode(r.IntegratorCode); err != nil {
			return fmt.Errorf("IYS_INTEGRATOR_CODE: %w", err)
		}
		check = partnerCheck
	}
	m, err := check(ctx, iys, r)
	if err != nil {
		return err
	}
	if m != nil {
		return m
	}
	return nil
}

const (
	stepPartnership = "open İş Ortaklığı, choose %s as its solution partner, and turn on the permissions %s"
	stepChannels    = "in İş Ortaklığı, turn on the %s permission(s) for solution partner %s"
	stepReconcile   = "turn on Mutabakat Yönetimi (reconciliation), without which İYS's changes cannot be pulled"
)

// notListed is the refusal when İYS lists no such brand for this API user:
// wrong codes, or no partnership yet, which İYS does not tell apart.
func notListed(r Request) *Missing {
	codes := "the codes are wrong: check --brand-code " + r.BrandCode + " and --iys-code " + r.IYSCode +
		" against the brand's İYS panel (the İYS code is the brand owner's, the brand code the brand's)"
	grant := "or the brand has not granted İş Ortaklığı rights to solution partner %s yet: in the İYS panel, the brand opens " +
		"İş Ortaklığı, chooses %s as its solution partner, and turns on %s; and turns on Mutabakat Yönetimi for reconciliation"
	var steps []string
	if r.IntegratorCode != "" {
		codes += ", and IYS_INTEGRATOR_CODE " + r.IntegratorCode + " against the partner's"
		steps = []string{codes, fmt.Sprintf(grant, r.IntegratorCode, r.IntegratorCode, consent.JoinTypes(r.Channels, ", "))}
	} else {
		steps = []string{codes, "or this API user is a solution partner's and IYS_INTEGRATOR_CODE is not set: set it to the partner's " +
			"integrator code; the brand must then have granted the rights: İYS panel → İş Ortaklığı → choose the partner → turn on " +
			consent.JoinTypes(r.Channels, ", ") + "; and Mutabakat Yönetimi for reconciliation"}
	}
	return &Missing{Request: r, NotListed: true, Steps: steps}
}

// partnerCheck reads the partner's rights per brand and channel.
func partnerCheck(ctx context.Context, iys IYS, r Request) (*Missing, error) {
	raw, err := iys.IntegratorRights(ctx, r.IntegratorCode, r.IYSCode)
	if forbidden(err) {
		return notListed(r), nil
	}
	if err != nil {
		return nil, fmt.Errorf("ask İYS for the partner's rights: %w", err)
	}
	brands, err := parseRights(raw)
	if err != nil {
		return nil, fmt.Errorf("read İYS's partner rights (check İş Ortaklığı in the panel by hand, then use --skip-verify): %w", err)
	}
	b, ok := brands[r.BrandCode]
	if !ok {
		return notListed(r), nil
	}
	var noWrite []consent.Type
	reconcile := false
	for _, t := range r.Channels {
		if !b[t].write {
			noWrite = append(noWrite, t)
		}
		reconcile = reconcile || b[t].agreementControl
	}
	var steps []string
	switch {
	case len(noWrite) == len(r.Channels) && !reconcile: // no partnership at all
		steps = append(steps, fmt.Sprintf(stepPartnership, r.IntegratorCode, consent.JoinTypes(r.Channels, ", ")))
	case len(noWrite) > 0:
		steps = append(steps, fmt.Sprintf(stepChannels, consent.JoinTypes(noWrite, ", "), r.IntegratorCode))
	}
	if !reconcile {
		steps = append(steps, stepReconcile)
	}
	if len(steps) == 0 {
		return nil, nil
	}
	return &Missing{Request: r, Steps: steps}, nil
}

// ownCheck checks the brand's own API user: the brand is listed, and the
// changes feed (which needs reconciliation rights) answers.
func ownCheck(ctx context.Context, iys IYS, r Request) (*Missing, error) {
	brands, err := iys.Brands(ctx, r.IYSCode)
	if forbidden(err) {
		return notListed(r), nil
	}
	if err != nil {
		return nil, fmt.Errorf("ask İYS for the brands: %w", err)
	}
	if !slices.ContainsFunc(brands, func(b iysclient.Brand) bool { return b.BrandCode == r.BrandCode }) {
		return notListed(r), nil
	}
	_, err = iys.Changes(ctx, r.IYSCode, r.BrandCode, iysclient.ChangesQuery{Source: iysclient.ChangesByCitizens, Limit: 1})
	if forbidden(err) {
		return &Missing{Request: r, Steps: []string{stepReconcile}}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("ask İYS for the changes feed: %w", err)
	}
	return nil, nil
}

func forbidden(err error) bool {
	var apiErr *iysclient.APIError
	return errors.As(err, &apiErr) && apiErr.Status == 403
}

type typeRights struct{ write, agreementControl bool }

// parseRights reads the partner-rights answer: brands, each with its rights
// per type, as a list [{type, write, agreementControl}] or a map by type.
// İYS documents the content, not the shape, so both are read.
func parseRights(raw json.RawMessage) (map[string]map[consent.Type]typeRights, error) {
	var top struct {
		Brands json.RawMessage `json:"brands"`
		List   json.RawMessage `json:"list"`
	}
	list := raw
	if t := strings.TrimSpace(string(raw)); strings.HasPrefix(t, "{") {
		if err := json.Unmarshal(raw, &top); err != nil {
			return nil, err
		}
		list = top.Brands
		if len(list) == 0 {
			list = top.List
		}
	}
	var brands []struct {
		BrandCode code            `json:"brandCode"`
		Rights    json.RawMessage `json:"rights"`
	}
	if err := json.Unmarshal(list, &brands); err != nil {
		return nil, fmt.Errorf("no list of brands: %w", err)
	}
	type entry struct {
		Type             consent.Type `json:"type"`
		Write            bool         `json:"write"`
		AgreementControl bool         `json:"agreementControl"`
	}
	out := map[string]map[consent.Type]typeRights{}
	for _, b := range brands {
		byType := map[consent.Type]typeRights{}
		var asList []entry
		var asMap map[consent.Type]entry
		switch {
		case json.Unmarshal(b.Rights, &asList) == nil:
			for _, e := range asList {
				byType[e.Type] = typeRights{e.Write, e.AgreementControl}
			}
		case json.Unmarshal(b.Rights, &asMap) == nil:
			for t, e := range asMap {
				byType[t] = typeRights{e.Write, e.AgreementControl}
			}
		default:
			return nil, fmt.Errorf("brand %s: rights are neither a list nor a map by type", b.BrandCode)
		}
		out[string(b.BrandCode)] = byType
	}
	return out, nil
}

// code reads a brand code written as a JSON string or number.
type code string

func (c *code) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*c = code(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("brand code: %w", err)
	}
	*c = code(n.String())
	return nil
}
