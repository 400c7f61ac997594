// Package token extracts bearer tokens from HTTP requests and verifies them
// as signed JWTs.
//
// Extraction ([Extract]) and verification ([Verifier.Verify]) are separate so
// that a gateway can answer a missing or ambiguous credential differently
// from an invalid one. Every error that Extract and Verify return about a
// request wraps one of the sentinel errors [ErrNoToken], [ErrInvalidRequest],
// [ErrMalformed], [ErrInvalid] or [ErrKeyUnavailable]; test for them with
// [errors.Is]. Configuration errors (from [New], [LoadPublicKeys],
// [ValidateSources], or an unknown [Source] kind given to Extract) wrap none
// of them.
//
// Error messages are short and safe to log: they never contain the raw token
// nor values taken from it.
package token
