package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

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

	js, err := json.Marshal(sum)
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
	if raw.Pending != nil || raw.Connectors[0]["Pending"] != nil || raw.Connectors[1]["Pending"] != 0.0 {
		t.Fatalf("JSON %s: want Pending null where unknown, 0 where counted", js)
	}
	if _, ok := raw.Connectors[0]["Pending"]; !ok {
		t.Fatalf("JSON %s: Pending missing", js)
	}
	var back engine.Summary
	if err := json.Unmarshal(js, &back); err != nil || back.Pending != engine.PendingUnknown ||
		back.Connectors[0].Pending != engine.PendingUnknown || back.Connectors[1].Pending != 0 || back.Connectors[0].Sent != 1000 {
		t.Fatalf("read back: %+v %v", back, err)
	}
}
