package api

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Error codes carried in the error envelope.
const (
	CodeInvalid      = "invalid_argument"  // 400: a field is wrong; Field names it
	CodeUnauthorized = "unauthenticated"   // 401: missing or wrong token
	CodeForbidden    = "permission_denied" // 403: the caller may not do this
	CodeNotFound     = "not_found"         // 404
	CodeConflict     = "already_exists"    // 409: the name is taken
	CodeFailedPre    = "failed_precondition"
	CodeTooLarge     = "too_large"   // 413
	CodeUnavailable  = "unavailable" // 503: no leader, shutting down
	CodeInternal     = "internal"    // 500
)

// Error is the body of every non-2xx answer, and what the client returns
// for one.
type Error struct {
	// Status is the HTTP status code.
	Status  int    `json:"status"`
	Code    string `json:"code"`
	Message string `json:"message"`
	// Field names the offending input field, when there is one.
	Field string `json:"field,omitempty"`
}

// Error implements error.
func (e *Error) Error() string { return e.Message }

// ErrorEnvelope wraps Error on the wire.
type ErrorEnvelope struct {
	Error *Error `json:"error"`
}

// Invalid makes a 400 error naming field.
func Invalid(field, format string, args ...any) *Error {
	msg := fmt.Sprintf(format, args...)
	if field != "" {
		sep := ": "
		for _, verb := range []string{"is ", "must ", "has ", "contains "} {
			if strings.HasPrefix(msg, verb) {
				sep = " "
			}
		}
		msg = field + sep + msg
	}
	return &Error{Status: http.StatusBadRequest, Code: CodeInvalid, Message: msg, Field: field}
}

// NotFound makes a 404 error.
func NotFound(format string, args ...any) *Error {
	return &Error{Status: http.StatusNotFound, Code: CodeNotFound, Message: fmt.Sprintf(format, args...)}
}

// Conflict makes a 409 error.
func Conflict(format string, args ...any) *Error {
	return &Error{Status: http.StatusConflict, Code: CodeConflict, Message: fmt.Sprintf(format, args...)}
}

// FailedPrecondition makes a 409 error for a request that does not fit the
// current state (cancel of a finished run, delete of a busy target...).
func FailedPrecondition(format string, args ...any) *Error {
	return &Error{Status: http.StatusConflict, Code: CodeFailedPre, Message: fmt.Sprintf(format, args...)}
}

// Forbidden makes a 403 error.
func Forbidden(format string, args ...any) *Error {
	return &Error{Status: http.StatusForbidden, Code: CodeForbidden, Message: fmt.Sprintf(format, args...)}
}

// Unauthorized makes a 401 error.
func Unauthorized(format string, args ...any) *Error {
	return &Error{Status: http.StatusUnauthorized, Code: CodeUnauthorized, Message: fmt.Sprintf(format, args...)}
}

// TooLarge makes a 413 error.
func TooLarge(format string, args ...any) *Error {
	return &Error{Status: http.StatusRequestEntityTooLarge, Code: CodeTooLarge, Message: fmt.Sprintf(format, args...)}
}

// Unavailable makes a 503 error.
func Unavailable(format string, args ...any) *Error {
	return &Error{Status: http.StatusServiceUnavailable, Code: CodeUnavailable, Message: fmt.Sprintf(format, args...)}
}

// StatusOf returns the HTTP status of err: an *Error's own, else 500.
func StatusOf(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return http.StatusInternalServerError
}

// IsNotFound reports whether err is a 404 from the API.
func IsNotFound(err error) bool { return StatusOf(err) == http.StatusNotFound }
