package session

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCompactUserAgent(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"curl/7.88.1", "curl/7.88.1"},
		{"", ""},
		{"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
			"(X11; Linux x86_64) Chrome/131.0.0.0 Safari/537.36"},
		{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
			"(Windows NT 10.0; Win64; x64) Chrome/131.0.0.0 Edg/131.0.0.0"},
		{"Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
			"(X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"},
		{"Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
			"(iPhone; CPU iPhone OS 17_5 like Mac OS X) Version/17.5 Mobile/1"},
		{strings.Repeat("a", 100), strings.Repeat("a", 64)},
		// never splits a rune: 63 ASCII bytes then a 3-byte rune
		{strings.Repeat("a", 63) + "€€", strings.Repeat("a", 63)},
	} {
		got := CompactUserAgent(tc.in)
		if got != tc.want {
			t.Errorf("CompactUserAgent(%q)\n got %q\nwant %q", tc.in, got, tc.want)
		}
		if len(got) > MaxUserAgent || !utf8.ValidString(got) && utf8.ValidString(tc.in) {
			t.Errorf("CompactUserAgent(%q) = %q: %d bytes or invalid UTF-8", tc.in, got, len(got))
		}
	}
}
