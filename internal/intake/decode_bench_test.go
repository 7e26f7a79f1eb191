package intake

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// BenchmarkDecodeLargestBody decodes a body of 10,000 items with
// 255-character external ids of Turkish letters: written as UTF-8 (7 MB),
// and as \u escapes (the worst case, just under 16 MiB).
func BenchmarkDecodeLargestBody(b *testing.B) {
	for _, c := range []struct{ name, ext string }{
		{"utf8", strings.Repeat("ş", 255)},
		{"escaped", strings.Repeat(`\u015f`, 255)},
	} {
		b.Run(c.name, func(b *testing.B) {
			var body bytes.Buffer
			body.WriteByte('[')
			for i := range DefaultMaxItems {
				if i > 0 {
					body.WriteByte(',')
				}
				fmt.Fprintf(&body, `{"recipient":"90544%07d","type":"MESAJ","status":"ONAY","consentDate":"2025-05-15 14:23:00","platform":"web","externalId":"%s"}`, i, c.ext)
			}
			body.WriteByte(']')
			h := &Handler{maxItems: DefaultMaxItems, maxBytes: DefaultMaxBytes}
			b.SetBytes(int64(body.Len()))
			b.ReportAllocs()
			for b.Loop() {
				r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body.Bytes()))
				if _, status, _, msg := h.decode(httptest.NewRecorder(), r); status != 0 {
					b.Fatal(msg)
				}
			}
		})
	}
}
