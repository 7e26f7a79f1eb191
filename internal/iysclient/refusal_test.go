package iysclient

import (
	"testing"

	"github.com/iys-sync/iys-sync/internal/consent"
)

// refusalItems are the consents of the bulk request the cases refuse.
func refusalItems() []consent.Consent {
	d, _ := consent.ParseDate("2025-05-14 09:00:00")
	mk := func(r string, t consent.Type) consent.Consent {
		return consent.Consent{Recipient: r, RecipientType: consent.Bireysel, Type: t, Status: consent.StatusOnay,
			ConsentDate: d, Source: consent.SourceWeb}
	}
	return []consent.Consent{mk("+905331110001", consent.TypeMesaj), mk("+905331110002", consent.TypeMesaj),
		mk("User@Example.com", consent.TypeEposta), mk("+905331110004", consent.TypeArama)}
}

func TestRefusedItems(t *testing.T) {
	items := refusalItems()
	tests := []struct {
		name string
		body string
		ok   bool
		pos  []int
	}{
		{"index from 1, value the recipient", `{"errors":[
			{"code":"H121","message":"bad","location":["recipient"],"value":"+905331110002","index":2},
			{"code":"H120","message":"bad","location":["recipient"],"value":"user@example.com ","index":3}]}`, true, []int{1, 2}},
		{"the recipient without its +", `{"errors":[{"code":"H121","value":"905331110004","index":4}]}`, true, []int{3}},
		{"no value: the index is trusted", `{"errors":[{"code":"H121","index":1}]}`, true, []int{0}},
		{"a value of another field the location names", `{"errors":[{"code":"H157","location":["consentDate"],"value":"2025-05-14 09:00:00","index":4}]}`, true, []int{3}},
		{"two errors on one item", `{"errors":[{"code":"H121","index":1},{"code":"H157","index":1}]}`, true, []int{0}},
		{"index counted from 0", `{"errors":[{"code":"H121","location":["recipient"],"value":"+905331110002","index":0}]}`, false, nil},
		{"index and value disagree", `{"errors":[{"code":"H121","location":["recipient"],"value":"+905331110002","index":1}]}`, false, nil},
		{"value of no field", `{"errors":[{"code":"H121","value":"+905339999999","index":2}]}`, false, nil},
		{"index past the end", `{"errors":[{"code":"H121","index":5}]}`, false, nil},
		{"a value that is no string", `{"errors":[{"code":"H121","value":905331110001,"index":1}]}`, false, nil},
		{"no index", `{"errors":[{"code":"H121","message":"bad","value":"+905331110002"}]}`, false, nil},
		{"one of two without index", `{"errors":[{"code":"H121","index":1},{"code":"H121"}]}`, false, nil},
		{"no errors list", `{}`, false, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := parseAPIError(400, []byte(tc.body))
			named, ok := RefusedItems(items, e)
			if ok != tc.ok || len(named) != len(tc.pos) {
				t.Fatalf("RefusedItems = %+v, %v; want positions %v, %v", named, ok, tc.pos, tc.ok)
			}
			for i, p := range tc.pos {
				if named[i].Position != p {
					t.Fatalf("named %+v, want positions %v", named, tc.pos)
				}
			}
		})
	}
}

func TestRefusedForItems(t *testing.T) {
	tests := []struct {
		status int
		body   string
		want   bool
	}{
		{400, `{"errors":[{"code":"H121","index":1}]}`, true},
		{422, `{"errors":[{"code":"H114"}]}`, true},
		{400, `{"errors":[{"message":"not a consent"}]}`, true}, // no code: an unknown verdict
		{400, `not json`, true},
		{400, `{"errors":[{"code":"H194","index":3}]}`, false}, // a key twice: our bug
		{400, `{"errors":[{"code":"H121","index":1},{"code":"H125"}]}`, false},
		{400, `{"errors":[{"code":"H353"}]}`, false}, // rights
		{401, `{"errors":[{"code":"H351"}]}`, false},
		{403, `{"errors":[{"code":"H121"}]}`, false},
		{429, `{"errors":[{"code":"H121"}]}`, false},
		{400, `{"errors":[{"code":"H083"}]}`, false}, // throttled
		{500, `{"errors":[{"code":"H121"}]}`, false},
	}
	for _, tc := range tests {
		if got := parseAPIError(tc.status, []byte(tc.body)).RefusedForItems(); got != tc.want {
			t.Errorf("%d %s: RefusedForItems = %v, want %v", tc.status, tc.body, got, tc.want)
		}
	}
}
