// Package iysadapter makes the İYS client the İYS of the sync engine:
//
//	engine.New(store, iysadapter.New(client), opts)
//
// It is the one place that knows both: the engine declares what it needs
// (sync.IYS) and the client stays unaware of the engine.
package iysadapter

import (
	"context"
	"errors"
	"fmt"

	"github.com/iys-sync/iys-sync/internal/consent"
	"github.com/iys-sync/iys-sync/internal/iysclient"
	engine "github.com/iys-sync/iys-sync/internal/sync"
)

// Adapter is an *iysclient.Client as a sync.IYS.
type Adapter struct{ c *iysclient.Client }

// New wraps a client.
func New(c *iysclient.Client) *Adapter { return &Adapter{c: c} }

var _ engine.IYS = (*Adapter)(nil)

// SubmitBulk sends the consents as one bulk request.
func (a *Adapter) SubmitBulk(ctx context.Context, iysCode, brandCode string, items []consent.Consent) (engine.Submission, error) {
	req, err := a.c.SubmitBulk(ctx, iysCode, brandCode, items)
	if err != nil {
		var sub engine.Submission
		var match *iysclient.BulkMatchError
		if errors.As(err, &match) {
			sub.RequestID = match.RequestID // the request exists at İYS: the engine logs it
		}
		ce := callError(err)
		var apiErr *iysclient.APIError
		if errors.As(err, &apiErr) && apiErr.RefusedForItems() {
			ce.Refusal = &engine.Refusal{Code: apiErr.Code, Message: apiErr.Message}
			if named, ok := iysclient.RefusedItems(items, apiErr); ok {
				ce.Refusal.Named = make([]engine.RefusedItem, len(named))
				for i, n := range named {
					ce.Refusal.Named[i] = engine.RefusedItem{Position: n.Position, Code: n.Code, Message: n.Message}
				}
			}
		}
		return sub, ce
	}
	sub := engine.Submission{RequestID: req.RequestID, SubrequestIDs: make([]string, len(req.Items))}
	for i, it := range req.Items {
		sub.SubrequestIDs[i] = it.SubrequestID
	}
	return sub, nil
}

// BulkResults polls a bulk request once and, when İYS is done with every
// item, matches the results to the subrequestIds (iysclient.MatchResults:
// by subrequestId only, never by index or position).
func (a *Adapter) BulkResults(ctx context.Context, iysCode, brandCode, requestID string, subrequestIDs []string) ([]engine.ItemResult, bool, error) {
	res, err := a.c.BulkResults(ctx, iysCode, brandCode, requestID)
	if err != nil {
		return nil, false, callError(err)
	}
	if !iysclient.BulkDone(res) {
		return nil, false, nil
	}
	items := make([]iysclient.BulkItem, len(subrequestIDs))
	for i, id := range subrequestIDs {
		items[i] = iysclient.BulkItem{SubrequestID: id}
	}
	matched, err := iysclient.MatchResults(items, res)
	if err != nil {
		return nil, false, &engine.CallError{Class: consent.ClassUnknown,
			Message: fmt.Sprintf("bulk request %s: %v", requestID, err), Err: err}
	}
	out := make([]engine.ItemResult, len(matched))
	for i, m := range matched {
		r := m.Result
		out[i] = engine.ItemResult{SubrequestID: r.SubrequestID, Class: r.Class(), TransactionID: r.TransactionID}
		if r.Error != nil {
			out[i].Code, out[i].Message = r.Error.Code, r.Error.Message
		}
	}
	return out, true, nil
}

// callError classifies a client error for the engine.
func callError(err error) *engine.CallError {
	ce := &engine.CallError{Class: iysclient.ErrorClass(err), Message: err.Error(), Err: err}
	var apiErr *iysclient.APIError
	if errors.As(err, &apiErr) {
		ce.Code = apiErr.Code
		if apiErr.Message != "" {
			ce.Message = fmt.Sprintf("HTTP %d: %s", apiErr.Status, apiErr.Message)
		} else {
			ce.Message = fmt.Sprintf("HTTP %d", apiErr.Status)
		}
	}
	return ce
}
