package token

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestExtract(t *testing.T) {
	bearer := Source{Kind: SourceHeader, Name: "Authorization", Scheme: "Bearer"}
	cookie := Source{Kind: SourceCookie, Name: "sg"}
	rawHeader := Source{Kind: SourceHeader, Name: "X-Token"}
	both := []Source{bearer, cookie}
	const tok = "aaaa.bbbb.cccc"

	tests := []struct {
		name    string
		sources []Source
		headers [][2]string
		maxLen  int
		want    string
		wantErr error
	}{
		{"bearer", both, [][2]string{{"Authorization", "Bearer " + tok}}, 0, tok, nil},
		{"bearer lower case", both, [][2]string{{"authorization", "bearer " + tok}}, 0, tok, nil},
		{"bearer upper case", both, [][2]string{{"Authorization", "BEARER " + tok}}, 0, tok, nil},
		{"surrounding whitespace", both, [][2]string{{"Authorization", " Bearer " + tok + "\t"}}, 0, tok, nil},
		{"wrong scheme", both, [][2]string{{"Authorization", "Basic dXNlcjpwYXNz"}}, 0, "", ErrNoToken},
		{"scheme prefix only", both, [][2]string{{"Authorization", "Bearerx " + tok}}, 0, "", ErrNoToken},
		{"scheme without space", both, [][2]string{{"Authorization", "Bearer" + tok}}, 0, "", ErrNoToken},
		{"two spaces (1*SP, RFC 7235)", both, [][2]string{{"Authorization", "Bearer  " + tok}}, 0, tok, nil},
		{"five spaces", both, [][2]string{{"Authorization", "Bearer     " + tok}}, 0, tok, nil},
		{"space then tab", both, [][2]string{{"Authorization", "Bearer \t" + tok}}, 0, "", ErrInvalidRequest},
		{"tab instead of space", both, [][2]string{{"Authorization", "Bearer\t" + tok}}, 0, "", ErrInvalidRequest},
		{"scheme only", both, [][2]string{{"Authorization", "Bearer"}}, 0, "", ErrInvalidRequest},
		{"scheme and space", both, [][2]string{{"Authorization", "Bearer "}}, 0, "", ErrInvalidRequest},
		{"empty header", both, [][2]string{{"Authorization", ""}}, 0, "", ErrNoToken},
		{"two credentials", both, [][2]string{{"Authorization", "Bearer a.b.c, Bearer d.e.f"}}, 0, "", ErrInvalidRequest},
		{"two Authorization headers", both, [][2]string{{"Authorization", "Bearer " + tok}, {"Authorization", "Bearer " + tok}}, 0, "", ErrInvalidRequest},
		{"header and cookie", both, [][2]string{{"Authorization", "Bearer " + tok}, {"Cookie", "sg=" + tok}}, 0, "", ErrInvalidRequest},
		{"cookie with header source not configured", []Source{cookie}, [][2]string{{"Authorization", "Bearer " + tok}, {"Cookie", "sg=" + tok}}, 0, tok, nil},
		{"cookie only", both, [][2]string{{"Cookie", "a=1; sg=" + tok + "; b=2"}}, 0, tok, nil},
		{"quoted cookie", both, [][2]string{{"Cookie", `sg="` + tok + `"`}}, 0, tok, nil},
		{"other cookies", both, [][2]string{{"Cookie", "sgx=1; xsg=2"}}, 0, "", ErrNoToken},
		{"empty cookie", both, [][2]string{{"Cookie", "sg="}}, 0, "", ErrNoToken},
		{"duplicated cookie", both, [][2]string{{"Cookie", "sg=" + tok + "; sg=" + tok}}, 0, "", ErrInvalidRequest},
		{"duplicated cookie, one empty", both, [][2]string{{"Cookie", "sg=; sg=" + tok}}, 0, "", ErrInvalidRequest},
		{"duplicated cookie, one invalid", both, [][2]string{{"Cookie", "sg=" + tok + "; sg=a\"b"}}, 0, "", ErrInvalidRequest},
		{"duplicated cookie across headers", both, [][2]string{{"Cookie", "sg=" + tok}, {"Cookie", "a=1; sg=x.y.z"}}, 0, "", ErrInvalidRequest},
		{"cookie with space", both, [][2]string{{"Cookie", "sg=a b"}}, 0, "", ErrInvalidRequest},
		{"cookie name is case-sensitive", both, [][2]string{{"Cookie", "SG=" + tok}}, 0, "", ErrNoToken},
		{"none", both, nil, 0, "", ErrNoToken},
		{"no sources", nil, [][2]string{{"Authorization", "Bearer " + tok}}, 0, "", ErrNoToken},
		{"raw header", []Source{rawHeader}, [][2]string{{"X-Token", tok}}, 0, tok, nil},
		{"raw header empty", []Source{rawHeader}, [][2]string{{"X-Token", ""}}, 0, "", ErrInvalidRequest},
		{"raw header twice", []Source{rawHeader}, [][2]string{{"X-Token", tok}, {"X-Token", tok}}, 0, "", ErrInvalidRequest},
		{"too long", both, [][2]string{{"Authorization", "Bearer " + strings.Repeat("a", 8193)}}, 0, "", ErrMalformed},
		{"exactly max length", both, [][2]string{{"Authorization", "Bearer " + strings.Repeat("a", 8192)}}, 0, strings.Repeat("a", 8192), nil},
		{"custom max length", both, [][2]string{{"Authorization", "Bearer " + tok}}, 5, "", ErrMalformed},
		{"too long cookie", both, [][2]string{{"Cookie", "sg=" + strings.Repeat("a", 9000)}}, 0, "", ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			for _, h := range tt.headers {
				r.Header.Add(h[0], h[1])
			}
			got, err := Extract(r, tt.sources, tt.maxLen)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Extract error = %v, want %v", err, tt.wantErr)
				}
				if got != "" {
					t.Errorf("Extract returned %q with an error", got)
				}
				if strings.Contains(err.Error(), tok) || strings.Contains(err.Error(), "aaaaaaaa") {
					t.Errorf("error message contains the token: %q", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Extract: %v", err)
			}
			if got != tt.want {
				t.Fatalf("Extract = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestExtractUnknownKind(t *testing.T) {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	_, err := Extract(r, []Source{{Kind: "query", Name: "token"}}, 0)
	if err == nil || errors.Is(err, ErrNoToken) || errors.Is(err, ErrInvalidRequest) {
		t.Fatalf("Extract error = %v, want a configuration error", err)
	}
}

func TestValidateSources(t *testing.T) {
	tests := []struct {
		name    string
		sources []Source
		ok      bool
	}{
		{"bearer and cookie", []Source{{Kind: "header", Name: "Authorization", Scheme: "Bearer"}, {Kind: "cookie", Name: "__Host-sg"}}, true},
		{"raw header", []Source{{Kind: "header", Name: "X-Token"}}, true},
		{"none", nil, false},
		{"unknown kind", []Source{{Kind: "query", Name: "t"}}, false},
		{"empty name", []Source{{Kind: "header"}}, false},
		{"bad header name", []Source{{Kind: "header", Name: "X Token"}}, false},
		{"bad cookie name", []Source{{Kind: "cookie", Name: "a=b"}}, false},
		{"bad scheme", []Source{{Kind: "header", Name: "Authorization", Scheme: "Bearer "}}, false},
		{"cookie with scheme", []Source{{Kind: "cookie", Name: "sg", Scheme: "Bearer"}}, false},
		{"duplicate header", []Source{{Kind: "header", Name: "Authorization"}, {Kind: "header", Name: "authorization", Scheme: "Bearer"}}, false},
		{"duplicate cookie", []Source{{Kind: "cookie", Name: "sg"}, {Kind: "cookie", Name: "sg"}}, false},
		{"cookie and header of the same name", []Source{{Kind: "cookie", Name: "sg"}, {Kind: "header", Name: "sg"}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := ValidateSources(tt.sources); (err == nil) != tt.ok {
				t.Fatalf("ValidateSources = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

// BenchmarkExtract measures finding a 300-byte bearer token in a request,
// the first step of every request.
//
//	go test -run '^$' -bench Extract -benchmem ./internal/token/
func BenchmarkExtract(b *testing.B) {
	sources := []Source{{Kind: SourceHeader, Name: "Authorization", Scheme: "Bearer"}, {Kind: SourceCookie, Name: "sg"}}
	tok := strings.Repeat("a", 100) + "." + strings.Repeat("b", 150) + "." + strings.Repeat("c", 48)
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Extract(r, sources, 0); err != nil {
			b.Fatal(err)
		}
	}
}

func isSpaceOrControl(r rune) bool {
	return r <= ' ' || r == 0x7f
}

// TestHasSpaceOrControl checks the byte-wise scan against the rune-wise
// definition, on every byte and on multi-byte and invalid UTF-8.
func TestHasSpaceOrControl(t *testing.T) {
	inputs := []string{"", "abc", "a b", "é", "\u0085", "\u00a0", "\u2028", "\xff\xfe", "\xc2", "ok\x7f", "日本"}
	for c := 0; c < 256; c++ {
		inputs = append(inputs, "ab"+string([]byte{byte(c)})+"cd")
		for i := 0; i < 19; i++ { // every lane of the 8-byte words and the tail
			b := []byte(strings.Repeat("x", 19))
			b[i] = byte(c)
			inputs = append(inputs, string(b))
		}
		for d := 0; d < 256; d++ { // neighbours: a borrow must not make a match
			inputs = append(inputs, "abc"+string([]byte{byte(c), byte(d)})+"defghijk")
		}
	}
	for _, s := range inputs {
		if got, want := hasSpaceOrControl(s), strings.ContainsFunc(s, isSpaceOrControl); got != want {
			t.Errorf("hasSpaceOrControl(%q) = %v, want %v", s, got, want)
		}
		if got, want := trimOWS(" \t"+s+"\t "), strings.Trim(" \t"+s+"\t ", " \t"); got != want {
			t.Errorf("trimOWS(%q) = %q, want %q", s, got, want)
		}
	}
}
