package intake

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// token is one entry of IYS_INTAKE_TOKENS: a name for the logs and the audit,
// the SHA-256 of the token (never the token), and the brands it may write to
// (nil: all of them).
type token struct {
	name   string
	hash   [sha256.Size]byte
	brands []string
}

// parseTokens reads entries name:sha256hex or name:sha256hex:BRAND,BRAND.
// Errors name the entry, never its hash.
func parseTokens(entries []string) ([]token, error) {
	if len(entries) == 0 {
		return nil, errors.New("no intake tokens: set IYS_INTAKE_TOKENS to name:sha256-hex-of-token entries, or leave IYS_INTAKE_ADDR empty")
	}
	var out []token
	for _, e := range entries {
		parts := strings.Split(e, ":")
		if len(parts) < 2 || len(parts) > 3 || parts[0] == "" {
			return nil, fmt.Errorf("IYS_INTAKE_TOKENS: the entry named %q is not name:sha256-hex or name:sha256-hex:BRAND,BRAND", parts[0])
		}
		t := token{name: parts[0]}
		b, err := hex.DecodeString(parts[1])
		if err != nil || len(b) != sha256.Size {
			return nil, fmt.Errorf("IYS_INTAKE_TOKENS: the entry named %q does not hold a SHA-256 in hex (64 digits)", t.name)
		}
		copy(t.hash[:], b)
		if len(parts) == 3 {
			for _, br := range strings.Split(parts[2], ",") {
				if br = strings.TrimSpace(br); br != "" {
					t.brands = append(t.brands, br)
				}
			}
			if len(t.brands) == 0 {
				return nil, fmt.Errorf("IYS_INTAKE_TOKENS: the entry named %q lists no brand after its second colon", t.name)
			}
		}
		for _, o := range out {
			switch {
			case o.name == t.name:
				return nil, fmt.Errorf("IYS_INTAKE_TOKENS: two entries are named %q", t.name)
			case o.hash == t.hash:
				return nil, fmt.Errorf("IYS_INTAKE_TOKENS: the entries named %q and %q hold the same token", o.name, t.name)
			}
		}
		out = append(out, t)
	}
	return out, nil
}

// mayUse reports whether the token may use the brand's connector: write
// its consents, check its permissions.
func (t *token) mayUse(brand string) bool {
	return t.brands == nil || slices.Contains(t.brands, brand)
}

// authenticate finds the token of the request's "Authorization: Bearer ..."
// header, or nil. The presented token is hashed and compared with every
// configured hash in constant time, all of them whatever matched, so that
// the time taken tells nothing of which entry matched or how much of a hash
// a guess shares.
func (h *Handler) authenticate(r *http.Request) *token {
	scheme, presented, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	presented = strings.TrimSpace(presented)
	if !ok || !strings.EqualFold(scheme, "Bearer") || presented == "" {
		return nil
	}
	sum := sha256.Sum256([]byte(presented))
	found := -1
	for i := range h.tokens {
		eq := subtle.ConstantTimeCompare(sum[:], h.tokens[i].hash[:])
		found = subtle.ConstantTimeSelect(eq, i, found)
	}
	if found < 0 {
		return nil
	}
	return &h.tokens[found]
}
