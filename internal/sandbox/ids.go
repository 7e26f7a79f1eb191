package sandbox

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
)

// ids derives every identifier the sandbox hands out from counters and a
// secret, so that none needs storing: request ids from the request number,
// subrequest ids from the request number and position, transaction ids from
// a counter, cursors from a feed position. The secret comes from the seed
// and the reset generation: ids are reproducible for one seed, and an id or
// cursor of before a reset is not one of after it.
type ids struct {
	k   [5]uint64
	mac []byte
}

func newIDs(seed int64, generation uint64) ids {
	rng := rand.New(rand.NewPCG(uint64(seed), generation^0x1d5a_9b0c))
	var d ids
	for i := range d.k {
		d.k[i] = rng.Uint64()
	}
	d.mac = make([]byte, 32)
	for i := 0; i < len(d.mac); i += 8 {
		binary.BigEndian.PutUint64(d.mac[i:], rng.Uint64())
	}
	return d
}

// mix is splitmix64's finaliser: a bijection on uint64, so distinct inputs
// give distinct ids, and consecutive ones look unrelated.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

// uuid formats 128 bits as 8-4-4-4-12 hex digits.
func uuid(hi, lo uint64) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], hi)
	binary.BigEndian.PutUint64(b[8:], lo)
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func (d *ids) requestID(seq uint64) string { return uuid(mix(d.k[0]^seq), mix(d.k[1]^seq)) }

// subrequestID is unique per (request, position): position < 1024 because a
// request holds at most 1000 consents.
func (d *ids) subrequestID(seq uint64, pos int) string {
	return uuid(mix(d.k[0]^seq), mix(d.k[2]^(seq<<10|uint64(pos))))
}

func (d *ids) transactionID(n uint64) string {
	return fmt.Sprintf("%016x%016x", mix(d.k[3]^n), mix(d.k[4]^n))
}

// Cursors look like İYS's, `1604423100000_<64 hex>`: the milliseconds of the
// last change covered, then 8 bytes of the (masked) next feed position and
// 24 bytes of a MAC over brand, source, position and milliseconds. A cursor
// the sandbox did not issue fails the MAC.
func (d *ids) cursor(b brandKey, source string, next uint64, ms int64) string {
	var raw [32]byte
	binary.BigEndian.PutUint64(raw[:8], next^d.k[0])
	copy(raw[8:], d.sum(b, source, next, ms)[:24])
	return strconv.FormatInt(ms, 10) + "_" + hex.EncodeToString(raw[:])
}

// parseCursor reads the feed position out of a cursor, which must be
// exactly the one issued for this brand and source.
func (d *ids) parseCursor(s string, b brandKey, source string) (next uint64, err error) {
	msText, hexText, _ := strings.Cut(s, "_")
	ms, errMS := strconv.ParseInt(msText, 10, 64)
	raw, errHex := hex.DecodeString(hexText)
	if errMS != nil || errHex != nil || len(raw) != 32 {
		return 0, fmt.Errorf("after %q is not a cursor: send back the one the feed returned", s)
	}
	next = binary.BigEndian.Uint64(raw[:8]) ^ d.k[0]
	if subtle.ConstantTimeCompare([]byte(s), []byte(d.cursor(b, source, next, ms))) != 1 {
		return 0, fmt.Errorf("after %q was not issued by this feed for this brand and source", s)
	}
	return next, nil
}

func (d *ids) sum(b brandKey, source string, next uint64, ms int64) []byte {
	h := hmac.New(sha256.New, d.mac)
	var n [16]byte
	binary.BigEndian.PutUint64(n[:8], next)
	binary.BigEndian.PutUint64(n[8:], uint64(ms))
	h.Write([]byte(b.iysCode + "\x00" + b.brandCode + "\x00" + source + "\x00"))
	h.Write(n[:])
	return h.Sum(nil)
}
