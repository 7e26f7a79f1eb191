package main

import "github.com/iys-sync/iys-sync/internal/status"

// The tests' names of status --json, which internal/status assembles.
type (
	statusJSON      = status.Report
	connectorStatus = status.Connector
)
