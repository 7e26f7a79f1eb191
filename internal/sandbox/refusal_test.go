package sandbox

import (
	"encoding/json"
	"net/http"
	"regexp"
	"testing"
	"time"
)

// Recipients İYS holds invalid refuse a bulk request whole: 400, one error
// per bad item with its code, message, location, value and index from 1.
// With RefusalWithoutIndex the errors leave out index and value.
func TestInvalidRecipientRefusesBulkWhole(t *testing.T) {
	bad := regexp.MustCompile(`^\+9053300000(02|05)$|^bad@`)
	items := []wc{
		onay(phone(1), start), onay(phone(2), start), onay(phone(3), start),
		onay("bad@example.com", start).with("type", "EPOSTA"), onay(phone(5), start),
	}
	for _, withIndex := range []bool{true, false} {
		e := newEnv(t, Options{InvalidRecipient: bad, RefusalWithoutIndex: !withIndex})
		r := e.call("POST", base+"/consents/request", items)
		if r.status != http.StatusBadRequest {
			t.Fatalf("status %d, want 400: %s", r.status, r.body)
		}
		var body struct {
			Errors []map[string]json.RawMessage `json:"errors"`
		}
		r.decode(t, &body)
		want := []struct{ code, value, index string }{
			{"H121", `"+905330000002"`, "2"}, {"H120", `"bad@example.com"`, "4"}, {"H121", `"+905330000005"`, "5"},
		}
		if len(body.Errors) != len(want) {
			t.Fatalf("errors %s, want %d", r.body, len(want))
		}
		for i, w := range want {
			got := body.Errors[i]
			if string(got["code"]) != `"`+w.code+`"` || string(got["location"]) != `["recipient"]` || len(got["message"]) < 3 {
				t.Fatalf("error %d = %s, want %s at recipient with a message", i, r.body, w.code)
			}
			_, hasIndex := got["index"]
			_, hasValue := got["value"]
			switch {
			case withIndex && (string(got["index"]) != w.index || string(got["value"]) != w.value):
				t.Fatalf("error %d = %s, want index %s and value %s", i, r.body, w.index, w.value)
			case !withIndex && (hasIndex || hasValue):
				t.Fatalf("error %d = %s, want no index and no value", i, r.body)
			}
		}
		if n := len(e.held()); n != 0 {
			t.Fatalf("a refused request recorded %d consents", n)
		}
		// The single consent call refuses it as well; the others pass.
		e.add(items[1]).want(t, http.StatusUnprocessableEntity, "H121")
		e.add(items[0]).want(t, http.StatusOK, "")
	}
}

// ClockSkew moves the sandbox's clock, so that its "future" is not the
// host's: behind, it refuses as H162 a date the host has passed.
func TestClockSkew(t *testing.T) {
	e := newEnv(t, Options{ClockSkew: -time.Minute})
	e.add(onay(phone(1), start.Add(-30*time.Second))).want(t, http.StatusUnprocessableEntity, "H162")
	e.add(onay(phone(1), start.Add(-90*time.Second))).want(t, http.StatusOK, "")

	ahead := newEnv(t, Options{ClockSkew: time.Minute})
	ahead.add(onay(phone(1), start.Add(30*time.Second))).want(t, http.StatusOK, "")
}
