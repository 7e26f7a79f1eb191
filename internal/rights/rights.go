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

// Missing is a refusal: the things to turn on in the İYS panel.
type Missing struct {
	Request Request
	Steps   []string
}

func (m *Missing) Error() string {
	who := "this API user"
	if m.Request.IntegratorCode != "" {
		who = "solution partner " + m.Request.IntegratorCode
	}
	return fmt.Sprintf("İYS does not let %s work for brand %s (İYS code %s). In the İYS panel, the brand must:\n  - %s\nThen run install again (or pass --skip-verify to install without this check).",
		who, m.Request.BrandCode, m.Request.IYSCode, strings.Join(m.Steps, "\n  - "))
}

// Check asks İYS and returns nil, a *Missing, or the error of a call that
// could not be made.
func Check(ctx context.Context, iys IYS, r Request) error {
	var steps []string
	if r.IntegratorCode != "" {
		s, err := partnerSteps(ctx, iys, r)
		if err != nil {
			return err
		}
		steps = s
	} else {
		s, err := ownSteps(ctx, iys, r)
		if err != nil {
			return err
		}
		steps = s
	}
	if len(steps) > 0 {
		return &Missing{Request: r, Steps: steps}
	}
	return nil
}

const (
	stepPartnership  = "open İş Ortaklığı, pick %s as its solution partner, and turn on the permissions %s"
	stepChannels     = "in İş Ortaklığı, turn on the %s permission(s) for solution partner %s"
	stepReconcile    = "turn on Mutabakat Yönetimi (reconciliation), without which İYS's changes cannot be pulled"
	stepBrandUnknown = "check the codes: İYS lists no brand %s under İYS code %s for this API user"
)

// partnerSteps reads the partner's rights per brand and channel.
func partnerSteps(ctx context.Context, iys IYS, r Request) ([]string, error) {
	raw, err := iys.IntegratorRights(ctx, r.IntegratorCode, r.IYSCode)
	if forbidden(err) {
		return []string{fmt.Sprintf(stepPartnership, r.IntegratorCode, consent.JoinTypes(r.Channels, ", ")), stepReconcile}, nil
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
		return []string{fmt.Sprintf(stepPartnership, r.IntegratorCode, consent.JoinTypes(r.Channels, ", ")), stepReconcile}, nil
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
	if len(noWrite) > 0 {
		steps = append(steps, fmt.Sprintf(stepChannels, consent.JoinTypes(noWrite, ", "), r.IntegratorCode))
	}
	if !reconcile {
		steps = append(steps, stepReconcile)
	}
	return steps, nil
}

// ownSteps checks the brand's own API user: the brand is listed, and the
// changes feed (which needs reconciliation rights) answers.
func ownSteps(ctx context.Context, iys IYS, r Request) ([]string, error) {
	brands, err := iys.Brands(ctx, r.IYSCode)
	if forbidden(err) {
		return []string{fmt.Sprintf(stepBrandUnknown, r.BrandCode, r.IYSCode)}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("ask İYS for the brands: %w", err)
	}
	if !slices.ContainsFunc(brands, func(b iysclient.Brand) bool { return b.BrandCode == r.BrandCode }) {
		return []string{fmt.Sprintf(stepBrandUnknown, r.BrandCode, r.IYSCode)}, nil
	}
	_, err = iys.Changes(ctx, r.IYSCode, r.BrandCode, iysclient.ChangesQuery{Source: iysclient.ChangesByCitizens, Limit: 1})
	if forbidden(err) {
		return []string{stepReconcile}, nil
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
