package iysclient

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"

	"github.com/iys-sync/iys-sync/internal/consent"
)

func TestParseAPIError(t *testing.T) {
	tests := []struct {
		name     string
		status   int
		body     string
		code     consent.Code
		msg      string
		items    int
		location string
	}{
		{"errors list", 400, `{"errors":[{"code":"H114","message":"bad","location":["recipient"]},{"code":"H158"}]}`, "H114", "bad", 2, "recipient"},
		{"bare code", 422, `{"code":"h467","message":"too old"}`, "H467", "too old", 1, ""},
		{"oauth2", 401, `{"error":"invalid_grant","error_description":"expired"}`, "", "invalid_grant expired", 1, ""},
		{"error object", 429, `{"error":{"code":"H084","message":"cap"}}`, "H084", "cap", 1, ""},
		{"not json", 502, `<html>bad gateway</html>`, "", "Bad Gateway", 0, ""},
		{"empty", 500, ``, "", "Internal Server Error", 0, ""},
	}
	for _, tt := range tests {
		e := parseAPIError(tt.status, []byte(tt.body))
		if e.Status != tt.status || e.Code != tt.code || e.Message != tt.msg || len(e.Errors) != tt.items {
			t.Errorf("%s: got %+v", tt.name, e)
		}
		if tt.location != "" && (len(e.Location) != 1 || e.Location[0] != tt.location) {
			t.Errorf("%s: location = %v", tt.name, e.Location)
		}
	}
}

func TestAPIErrorClassFallsBackOnStatus(t *testing.T) {
	tests := []struct {
		status int
		code   consent.Code
		want   consent.Class
	}{
		{400, "H175", consent.ClassNoPriorRecord},
		{503, "H999", consent.ClassTransient},
		{429, "", consent.ClassTransient},
		{500, "", consent.ClassTransient},
		{401, "", consent.ClassToken},
		{403, "", consent.ClassConfiguration},
		{403, "H353", consent.ClassConfiguration},
		{404, "", consent.ClassUnknown},
		{400, "", consent.ClassUnknown},
	}
	for _, tt := range tests {
		if got := (&APIError{Status: tt.status, Code: tt.code}).Class(); got != tt.want {
			t.Errorf("%d %s: class = %q, want %q", tt.status, tt.code, got, tt.want)
		}
	}
}

func TestErrorClass(t *testing.T) {
	apiErr := &APIError{Status: 400, Code: consent.CodeNewerHeld}
	tests := []struct {
		err  error
		want consent.Class
	}{
		{nil, ""},
		{fmt.Errorf("submit bulk: %w", apiErr), consent.ClassSuperseded},
		{fmt.Errorf("x: %w", &LoginPausedError{}), consent.ClassLoginLimit},
		{fmt.Errorf("log in: %w: %w", ErrLoginRefused, &APIError{Status: 401}), consent.ClassConfiguration},
		{context.Canceled, consent.ClassTransient},
		{&net.OpError{Op: "dial", Err: errors.New("refused")}, consent.ClassTransient},
		{&BulkMatchError{RequestID: "r"}, consent.ClassUnknown},
		{errors.New("other"), consent.ClassUnknown},
	}
	for _, tt := range tests {
		if got := ErrorClass(tt.err); got != tt.want {
			t.Errorf("ErrorClass(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

func TestAPIErrorString(t *testing.T) {
	i := 3
	e := &APIError{Status: 400, Code: "H114", Message: "bad", Location: []string{"recipient"}, Index: &i,
		Errors: make([]ItemError, 3)}
	if got, want := e.Error(), "iys: HTTP 400 H114: bad (at recipient) [index 3] and 2 more"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}
