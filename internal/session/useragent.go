package session

import (
	"strings"
	"unicode/utf8"
)

// MaxUserAgent is the most bytes of a User-Agent kept with a session.
// Redis keeps a hash in its compact listpack encoding only while every
// value is at most 64 bytes (hash-max-listpack-value); one longer value
// makes the whole record several times bigger.
const MaxUserAgent = 64

// uaBoilerplate are tokens nearly every browser sends that say nothing
// about the browser, removed before cutting so that what is kept still
// names the platform and the browser.
var uaBoilerplate = strings.NewReplacer(
	"Mozilla/5.0 ", "",
	"(KHTML, like Gecko) ", "",
	"Safari/537.36 ", "",
)

// dropToken removes every space-terminated token of ua that starts with
// prefix.
func dropToken(ua, prefix string) string {
	for {
		i := strings.Index(ua, prefix)
		if i < 0 {
			return ua
		}
		j := strings.IndexByte(ua[i:], ' ')
		if j < 0 {
			return ua
		}
		ua = ua[:i] + ua[i+j+1:]
	}
}

// CompactUserAgent returns ua shortened for a session listing: common
// boilerplate tokens removed, then cut to at most MaxUserAgent bytes on
// a rune boundary. For example Chrome on Linux becomes
// "(X11; Linux x86_64) Chrome/131.0.0.0 Safari/537.36".
func CompactUserAgent(ua string) string {
	if len(ua) <= MaxUserAgent && !strings.HasPrefix(ua, "Mozilla/5.0 ") {
		return ua
	}
	ua = uaBoilerplate.Replace(dropToken(ua, "AppleWebKit/"))
	if len(ua) <= MaxUserAgent {
		return ua
	}
	cut := MaxUserAgent
	for cut > 0 && !utf8.RuneStart(ua[cut]) {
		cut--
	}
	return ua[:cut]
}
