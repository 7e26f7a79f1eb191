package iysclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
)

// Brand is one brand of an İYS account.
type Brand struct {
	BrandCode string
	Name      string
	Master    bool
	Stats     json.RawMessage // [doc] present, shape not documented
}

type wireBrand struct {
	BrandCode flexString      `json:"brandCode"`
	Name      string          `json:"name"`
	Master    flexBool        `json:"master"`
	Stats     json.RawMessage `json:"stats"`
}

// Brands lists the brands of the account iysCode.
func (c *Client) Brands(ctx context.Context, iysCode string) ([]Brand, error) {
	if err := checkSegments([]string{"iys code"}, iysCode); err != nil {
		return nil, fmt.Errorf("brands: %w", err)
	}
	var raw json.RawMessage
	if err := c.do(ctx, call{name: "brands", method: http.MethodGet, path: pathBrands(iysCode)}, &raw); err != nil {
		return nil, fmt.Errorf("brands: %w", err)
	}
	var ws []wireBrand
	if err := decodeList(raw, &ws); err != nil {
		return nil, fmt.Errorf("brands: decode answer: %w", err)
	}
	out := make([]Brand, len(ws))
	for i, w := range ws {
		out[i] = Brand{BrandCode: string(w.BrandCode), Name: w.Name, Master: bool(w.Master), Stats: w.Stats}
	}
	return out, nil
}

// IntegratorRights returns, raw, the rights the account iysCode granted to
// the solution partner integratorCode: brands with per-type read, write and
// reconciliation (agreementControl) rights [doc]. The shape is not
// documented beyond that, so the JSON is handed over as it came. Without a
// grant İYS answers 403 (Class configuration).
func (c *Client) IntegratorRights(ctx context.Context, integratorCode, iysCode string) (json.RawMessage, error) {
	if err := checkSegments([]string{"integrator code", "iys code"}, integratorCode, iysCode); err != nil {
		return nil, fmt.Errorf("integrator rights: %w", err)
	}
	var raw json.RawMessage
	err := c.do(ctx, call{name: "integrator rights", method: http.MethodGet,
		path: pathIntegratorRights(integratorCode, iysCode)}, &raw)
	if err != nil {
		return nil, fmt.Errorf("integrator rights: %w", err)
	}
	return raw, nil
}

// decodeList reads a top-level array, or an object holding it under "list"
// (the wrapper other İYS answers use).
func decodeList(raw json.RawMessage, out any) error {
	if t := bytes.TrimSpace(raw); len(t) > 0 && t[0] == '{' {
		var w struct {
			List json.RawMessage `json:"list"`
		}
		if err := json.Unmarshal(t, &w); err != nil {
			return err
		}
		if len(w.List) == 0 {
			return errors.New("object answer has no list")
		}
		raw = w.List
	}
	return json.Unmarshal(raw, out)
}
