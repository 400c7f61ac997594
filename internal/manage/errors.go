package manage

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/sessionguard/sessionguard/internal/policy"
	"github.com/sessionguard/sessionguard/internal/store"
)

// Error codes carried by Error.
const (
	// CodeInvalidRequest: malformed JSON, unknown fields, bad scope or
	// query parameters (400).
	CodeInvalidRequest = "invalid_request"
	// CodeValidationFailed: a well-formed policy change with values that
	// are not allowed (422).
	CodeValidationFailed = "validation_failed"
	// CodeUnsupportedMediaType: the body is not application/json (415).
	CodeUnsupportedMediaType = "unsupported_media_type"
	// CodeTooLarge: the body is over MaxBodyBytes (413).
	CodeTooLarge = "request_too_large"
	// CodeStoreUnavailable: the session store failed (503).
	CodeStoreUnavailable = "store_unavailable"
)

// Error is a failed operation with the HTTP status and JSON body it
// maps to. The admin API and the owner self-service endpoints both
// answer with it.
type Error struct {
	// Status is the HTTP status code.
	Status int
	// Code is the machine-readable error, e.g. "validation_failed".
	Code string
	// Message says what is wrong; it never contains a token or a raw
	// session id.
	Message string
	// Fields holds per-field messages of a validation failure.
	Fields policy.FieldErrors
	// Err is the underlying error, if any (e.g. the store's).
	Err error
}

// Error implements error.
func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %v", e.Message, e.Err)
	}
	if len(e.Fields) > 0 {
		return e.Fields.Error()
	}
	return e.Message
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// Body is the JSON body of the error response. Validation failures are
// {"error":"validation_failed","fields":{...}}; everything else is
// {"error":code,"error_description":message}.
func (e *Error) Body() map[string]any {
	body := map[string]any{"error": e.Code}
	if len(e.Fields) > 0 {
		body["fields"] = map[string]string(e.Fields)
	}
	if e.Message != "" && e.Code != CodeValidationFailed {
		body["error_description"] = e.Message
	}
	return body
}

// AsError returns err as an *Error; any other error becomes a 500.
func AsError(err error) *Error {
	var me *Error
	if errors.As(err, &me) {
		return me
	}
	return &Error{Status: http.StatusInternalServerError, Code: "internal_error", Message: "internal error", Err: err}
}

func badRequest(format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Code: CodeInvalidRequest, Message: fmt.Sprintf(format, args...)}
}

func validation(fields policy.FieldErrors) *Error {
	return &Error{Status: http.StatusUnprocessableEntity, Code: CodeValidationFailed, Message: "validation failed", Fields: fields}
}

// storeError turns any store error into a 503: a store that answers with
// an error cannot be trusted to have done the operation.
// A revocation that too few replicas acknowledged says so: it may be
// lost by a failover, and retrying it is safe.
func storeError(op string, err error) *Error {
	msg := op + ": session store unavailable"
	if errors.Is(err, store.ErrNotReplicated) {
		msg = op + ": not acknowledged by enough Redis replicas in time (revoke_replicas); retry"
	}
	return &Error{Status: http.StatusServiceUnavailable, Code: CodeStoreUnavailable, Message: msg, Err: err}
}
