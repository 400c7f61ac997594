package main

import "testing"

func TestKeyKind(t *testing.T) {
	for key, want := range map[string]string{
		"sg:{acct-0}:s:AbC_-12":          "s:",
		"sg:{acct-0}:ul:user-1":          "ul:",
		"sg:{acct-0}:us:user%3A1":        "us:",
		"sg:{acct-0}:idx":                "idx",
		"app:sg:{a%7Bb}:ord":             "ord",
		"sg:{~ev}:accts":                 "accts",
		"sg:{~due}":                      "{~due}",
		"scratch":                        "other",
		"sg:{acct-0}:uc:user-1":          "uc:",
		"sg:{~AbCdEfGhIjKlMnOpQrStUv}:o": "o",
	} {
		if got := keyKind(key); got != want {
			t.Errorf("keyKind(%q) = %q, want %q", key, got, want)
		}
	}
}
