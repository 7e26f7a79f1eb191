package iysclient_test

import (
	"context"
	"regexp"
	"testing"
	"time"

	"github.com/iys-sync/iys-sync/internal/consent"
	"github.com/iys-sync/iys-sync/internal/iysclient"
	"github.com/iys-sync/iys-sync/internal/sandbox"
)

// A bulk request holding recipients İYS holds invalid is refused whole;
// the client reads which ones from the errors' indexes, and reads nothing
// from errors that carry none.
func TestSubmitBulkRefusedForItems(t *testing.T) {
	t.Parallel()
	bad := regexp.MustCompile(`^\+90533000000[37]$`)
	for _, withIndex := range []bool{true, false} {
		e := startSandbox(t, sandbox.Options{InvalidRecipient: bad, RefusalWithoutIndex: !withIndex})
		c := e.client()
		items := make([]consent.Consent, 10)
		for i := range items {
			items[i] = onay(phone(i), e.clock.ago(time.Hour))
		}
		_, err := c.SubmitBulk(context.Background(), sbIYS, sbBrand, items)
		apiErr := apiError(t, err)
		if apiErr.Status != 400 || !apiErr.RefusedForItems() || len(apiErr.Errors) != 2 {
			t.Fatalf("index %v: %v, want 400 refused for 2 items", withIndex, apiErr)
		}
		named, ok := iysclient.RefusedItems(items, apiErr)
		switch {
		case withIndex && (!ok || len(named) != 2 || named[0].Position != 3 || named[1].Position != 7 ||
			named[0].Code != consent.CodeBadPhone):
			t.Fatalf("with index: %+v %v, want positions 3 and 7, H121", named, ok)
		case !withIndex && ok:
			t.Fatalf("without index: %+v, want nothing concluded", named)
		}
		if st := e.admin.Stats(); st.Recorded != 0 {
			t.Fatalf("a refused request recorded %d consents", st.Recorded)
		}
		// Without them, the rest goes through.
		rest := append(append(append([]consent.Consent(nil), items[:3]...), items[4:7]...), items[8:]...)
		if _, res := submitAndWait(t, c, sbBrand, rest); len(res) != 8 {
			t.Fatalf("%d results for the 8 left", len(res))
		}
		// The single consent call refuses it too.
		_, err = c.AddConsent(context.Background(), sbIYS, sbBrand, items[3])
		wantAPIError(t, "single", err, 422, consent.CodeBadPhone, consent.ClassInvalid)
	}
}
