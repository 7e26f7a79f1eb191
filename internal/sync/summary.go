package sync

import "encoding/json"

// PendingUnknown is the Pending of a summary whose records left could not
// be read (the database did not answer): never reported as 0.
const PendingUnknown = -1

// MarshalJSON writes Pending as null when it is unknown.
func (c ConnectorSummary) MarshalJSON() ([]byte, error) {
	type fields ConnectorSummary
	return json.Marshal(struct {
		fields
		Pending *int
	}{fields(c), knownCount(c.Pending)})
}

// UnmarshalJSON reads a null Pending as PendingUnknown.
func (c *ConnectorSummary) UnmarshalJSON(b []byte) error {
	type fields ConnectorSummary
	v := struct {
		*fields
		Pending *int
	}{fields: (*fields)(c)}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	c.Pending = unknownIfNil(v.Pending)
	return nil
}

// MarshalJSON writes Pending as null when it is unknown.
func (s Summary) MarshalJSON() ([]byte, error) {
	type fields Summary
	return json.Marshal(struct {
		fields
		Pending *int
	}{fields(s), knownCount(s.Pending)})
}

// UnmarshalJSON reads a null Pending as PendingUnknown.
func (s *Summary) UnmarshalJSON(b []byte) error {
	type fields Summary
	v := struct {
		*fields
		Pending *int
	}{fields: (*fields)(s)}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	s.Pending = unknownIfNil(v.Pending)
	return nil
}

func knownCount(n int) *int {
	if n == PendingUnknown {
		return nil
	}
	return &n
}

func unknownIfNil(n *int) int {
	if n == nil {
		return PendingUnknown
	}
	return *n
}
