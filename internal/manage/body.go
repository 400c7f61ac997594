package manage

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MaxBodyBytes is the largest request body accepted (64 KiB).
const MaxBodyBytes = 64 << 10

// maxDepth is the deepest nesting of arrays and objects accepted in a
// body (encoding/json's own limit is 10000). No valid body nests at all;
// this bounds the work spent on rejecting one.
const maxDepth = 8

// ReadBody checks that r carries a JSON body (Content-Type
// application/json, 415 otherwise) of at most MaxBodyBytes (413
// otherwise) and returns it.
func ReadBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return nil, &Error{Status: http.StatusUnsupportedMediaType, Code: CodeUnsupportedMediaType, Message: "Content-Type must be application/json"}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, &Error{Status: http.StatusRequestEntityTooLarge, Code: CodeTooLarge, Message: "request body is larger than 64 KiB"}
		}
		return nil, badRequest("reading request body: %v", err)
	}
	return body, nil
}

// decodeObject strictly decodes a JSON object into its members, without
// interpreting their values: anything but one object (trailing data,
// duplicate or unknown keys, nesting deeper than maxDepth, invalid UTF-8,
// a body over MaxBodyBytes) is an error.
func decodeObject(body []byte, known ...string) (map[string]json.RawMessage, *Error) {
	if len(body) > MaxBodyBytes {
		return nil, &Error{Status: http.StatusRequestEntityTooLarge, Code: CodeTooLarge, Message: "request body is larger than 64 KiB"}
	}
	if !utf8.Valid(body) { // encoding/json would replace the bad bytes silently
		return nil, badRequest("request body is not valid UTF-8")
	}
	if depth(body) > maxDepth {
		return nil, badRequest("request body is nested too deeply")
	}
	var out map[string]json.RawMessage
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, badRequest("request body is not valid JSON: %v", err)
	}
	if out == nil {
		return nil, badRequest("request body must be a JSON object")
	}
	for key := range out {
		if !slices.Contains(known, key) {
			return nil, badRequest("unknown field %s", strconv.Quote(Truncate(key, 64)))
		}
	}
	if key, dup := duplicateKey(body); dup {
		return nil, badRequest("duplicate field %q", key)
	}
	return out, nil
}

// duplicateKey returns a key the valid JSON object body holds twice:
// encoding/json keeps the last one silently.
func duplicateKey(body []byte) (string, bool) {
	dec := json.NewDecoder(bytes.NewReader(body))
	_, _ = dec.Token() // {
	seen := make(map[string]bool)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return "", false
		}
		key, _ := tok.(string)
		if seen[key] {
			return key, true
		}
		seen[key] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return "", false
		}
	}
	return "", false
}

// depth returns the deepest nesting of arrays and objects in a JSON
// text, ignoring brackets inside strings.
func depth(b []byte) int {
	d, maxD := 0, 0
	inStr, esc := false, false
	for _, c := range b {
		switch {
		case esc:
			esc = false
		case inStr:
			switch c {
			case '\\':
				esc = true
			case '"':
				inStr = false
			}
		case c == '"':
			inStr = true
		case c == '{' || c == '[':
			d++
			if d > maxD {
				maxD = d
			}
		case c == '}' || c == ']':
			d--
		}
	}
	return maxD
}

// WriteJSON writes v as the JSON body of a response with status code,
// not to be cached.
func WriteJSON(w http.ResponseWriter, code int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	return json.NewEncoder(w).Encode(v)
}

// isNull reports whether raw is the JSON literal null.
func isNull(raw json.RawMessage) bool { return string(bytes.TrimSpace(raw)) == "null" }

// parseMinutes parses a JSON integer (no fraction, no exponent, no
// quotes) that fits an int64.
func parseMinutes(raw json.RawMessage) (int64, bool) {
	s := string(bytes.TrimSpace(raw))
	digits := strings.TrimPrefix(s, "-")
	if digits == "" {
		return 0, false
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, false
	}
	return n, true
}

// parseString parses a JSON string.
func parseString(raw json.RawMessage) (string, bool) {
	var s string
	if len(raw) == 0 || raw[0] != '"' {
		return "", false
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false
	}
	return s, true
}

// Truncate cuts s to at most n bytes without splitting a UTF-8 sequence.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
