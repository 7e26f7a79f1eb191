package redact

import "testing"

// A log line scrubbed of a typical process's secrets: two connection strings
// and their passwords, the İYS password.
func BenchmarkStringLogLine(b *testing.B) {
	s := New()
	for _, dsn := range []string{"postgres://iys:Xk9-v2Lp0qRt7s@db.internal:5432/iys?sslmode=verify-full",
		"postgres://iys_reader:Mm3-Zq81LpQx@crm-db:5432/crm?sslmode=require"} {
		s.Add(DSNSecrets(dsn)...)
	}
	s.Add("İys-Pässw0rd-2025")
	line := `{"level":"info","ts":"2025-05-16T01:00:03.123Z","msg":"batch recorded","brand":"600001","run_id":42,"batch_id":1234,` +
		`"size":1000,"accepted":990,"rejected":10,"request_id":"0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0","duration":1.234}` + "\n"
	b.SetBytes(int64(len(line)))
	for b.Loop() {
		_ = s.String(line)
	}
}
