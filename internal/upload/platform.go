package upload

import (
	"strings"

	"github.com/iys-sync/iys-sync/internal/consent"
)

// A file names a handful of platforms on a million lines, and
// consent.PlatformSource allocates for its case changes: results are kept per
// Scanner, for short platform values, up to a bounded number of them.
const (
	platformCacheMax    = 256
	platformCacheKeyMax = 64
)

type platformResult struct {
	src   consent.Source
	known bool
	err   error
}

type platformCache struct {
	def consent.Source
	m   map[string]platformResult
}

func newPlatformCache(def consent.Source) platformCache {
	return platformCache{def: def, m: make(map[string]platformResult)}
}

// source is consent.PlatformSource(p, def), remembered.
func (c *platformCache) source(p string) (consent.Source, bool, error) {
	if r, ok := c.m[p]; ok {
		return r.src, r.known, r.err
	}
	src, known, err := consent.PlatformSource(p, c.def)
	if len(c.m) < platformCacheMax && len(p) <= platformCacheKeyMax {
		// Clone: p is a slice of the line, which the key must not keep alive.
		c.m[strings.Clone(p)] = platformResult{src, known, err}
	}
	return src, known, err
}
