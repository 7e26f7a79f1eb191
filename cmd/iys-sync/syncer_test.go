package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/iys-sync/iys-sync/internal/redact"
	engine "github.com/iys-sync/iys-sync/internal/sync"
)

// A summary whose records left could not be read says unknown, in text and
// as JSON null, never 0, and the command exits 3.
func TestRunSummaryUnknownBacklog(t *testing.T) {
	t.Parallel()
	sum := engine.Summary{Pending: engine.PendingUnknown, Connectors: []engine.ConnectorSummary{
		{BrandCode: "600001", RunID: 7, Status: "failed", Sent: 1000, Accepted: 1000, Pending: engine.PendingUnknown,
			Err: "records left unknown: backlog: dial tcp: connect: connection refused"},
		{BrandCode: "600002", RunID: 8, Status: "completed", Sent: 5, Accepted: 5},
	}}
	var out bytes.Buffer
	printRunSummary(&out, sum)
	lines := strings.Split(out.String(), "\n")
	if !strings.HasSuffix(strings.TrimSpace(lines[1]), "unknown") || !strings.HasSuffix(strings.TrimSpace(lines[2]), " 0") ||
		!strings.Contains(out.String(), "600001: records left unknown: backlog") {
		t.Fatalf("summary:\n%s", out.String())
	}
	var pe *partialError
	if err := runOutcome(sum); !errors.As(err, &pe) || !strings.Contains(err.Error(), "600001 has unknown records left (failed)") {
		t.Fatalf("outcome = %v, want exit 3 saying the records left are unknown", err)
	}

	js, err := json.Marshal(newRunSummaryJSON(sum))
	if err != nil {
		t.Fatal(err)
	}
	var raw struct {
		Pending    *int
		Connectors []map[string]any
	}
	if err := json.Unmarshal(js, &raw); err != nil {
		t.Fatal(err)
	}
	if raw.Pending != nil || raw.Connectors[0]["pending"] != nil || raw.Connectors[1]["pending"] != 0.0 {
		t.Fatalf("JSON %s: want pending null where unknown, 0 where counted", js)
	}
	if _, ok := raw.Connectors[0]["pending"]; !ok || !bytes.Contains(js, []byte(`"pending":null,"failed":0}`)) {
		t.Fatalf("JSON %s: pending missing", js)
	}
}

// --run-now --json is camelCase, as every JSON output, with every key
// always present, and the errors scrubbed of secrets as in the text.
func TestRunSummaryJSONShape(t *testing.T) {
	redact.Register("Sum-S3cret")
	sum := engine.Summary{Failed: 2, Connectors: []engine.ConnectorSummary{
		{BrandCode: "600001", RunID: 7, Status: "partial", Sent: 5, Accepted: 3, Rejected: 1, Retried: 4, Failed: 2, Pending: 9,
			Err: "login: Sum-S3cret"},
		{BrandCode: "600002", Skipped: true, Err: "another run (process or replica) is syncing this connector"},
		{BrandCode: "600003", Skipped: true, Paused: true, Err: "connector is paused"},
	}}
	js, err := json.Marshal(newRunSummaryJSON(sum))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"connectors":[` +
		`{"brandCode":"600001","runId":7,"status":"partial","sent":5,"accepted":3,"rejected":1,"retried":4,"failed":2,"pending":9,"skipped":false,"paused":false,"error":"login: ***"},` +
		`{"brandCode":"600002","runId":0,"status":"","sent":0,"accepted":0,"rejected":0,"retried":0,"failed":0,"pending":0,"skipped":true,"paused":false,"error":"another run (process or replica) is syncing this connector"},` +
		`{"brandCode":"600003","runId":0,"status":"","sent":0,"accepted":0,"rejected":0,"retried":0,"failed":0,"pending":0,"skipped":true,"paused":true,"error":"connector is paused"}` +
		`],"pending":0,"failed":2}`
	if string(js) != want {
		t.Fatalf("JSON\n%s\nwant\n%s", js, want)
	}
	if got := newRunSummaryJSON(engine.Summary{}); got.Connectors == nil {
		t.Fatal("no connectors: want [], not null")
	}
}
