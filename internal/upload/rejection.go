package upload

import "strconv"

// Field values of a Rejection, as the import --json summary names them.
const (
	FieldLine       = "line" // line structure: length, encoding, field count, header row
	FieldEmail      = "email"
	FieldPhone      = "phone"
	FieldPlatform   = "platform"
	FieldPermission = "permission"
	FieldTimestamp  = "timestamp"
	FieldExternalID = "externalId"
)

// Fields lists every Field value, in the order faults are looked for.
var Fields = []string{FieldLine, FieldEmail, FieldPhone, FieldPlatform, FieldPermission, FieldTimestamp, FieldExternalID}

// Rejection is a rejected line. Marshalled to JSON it is exactly an entry of
// the summary's "errors" (the path is the file's, not the entry's).
type Rejection struct {
	Path    string `json:"-"`
	Line    int    `json:"line"`
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Error is "FILE:LINE: FIELD: message".
func (r *Rejection) Error() string {
	return r.Path + ":" + strconv.Itoa(r.Line) + ": " + r.Field + ": " + r.Message
}
