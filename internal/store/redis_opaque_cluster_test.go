package store

import (
	"fmt"
	"testing"
	"time"
)

// TestPointerCacheBounds: the cache holds at most its size, drops the
// least recently used first, forgets entries after their TTL, and a put
// replaces the account and user of a hash.
func TestPointerCacheBounds(t *testing.T) {
	c := &pointerCache{size: 3, ttl: time.Hour}
	for i := range 3 {
		c.put(fmt.Sprint("h", i), pointed{account: fmt.Sprint("a", i)})
	}
	if _, ok := c.get("h0"); !ok { // h0 is now the most recently used
		t.Fatal("h0 missing")
	}
	c.put("h3", pointed{account: "a3"}) // evicts h1
	if _, ok := c.get("h1"); ok {
		t.Fatal("the least recently used entry survived")
	}
	for _, h := range []string{"h0", "h2", "h3"} {
		if _, ok := c.get(h); !ok {
			t.Fatalf("%s evicted", h)
		}
	}
	if c.len() != 3 {
		t.Fatalf("%d entries, want 3", c.len())
	}
	c.put("h2", pointed{account: "moved", user: "bob"})
	if p, _ := c.get("h2"); p.account != "moved" || p.user != "bob" || c.len() != 3 {
		t.Fatalf("after a put: %+v, %d entries", p, c.len())
	}
	c.forget("h2")
	if _, ok := c.get("h2"); ok || c.len() != 2 {
		t.Fatal("forget kept the entry")
	}

	short := &pointerCache{ttl: 20 * time.Millisecond}
	short.put("h", pointed{account: "a"})
	if p, ok := short.get("h"); !ok || p.account != "a" {
		t.Fatal("fresh entry missing")
	}
	time.Sleep(30 * time.Millisecond)
	if _, ok := short.get("h"); ok || short.len() != 0 {
		t.Fatal("an expired entry was returned or kept")
	}

	// the zero value is bounded by the defaults
	var d pointerCache
	for i := range pointerCacheSize + 10 {
		d.put(fmt.Sprint(i), pointed{account: "a"})
	}
	if d.len() != pointerCacheSize {
		t.Fatalf("%d entries, want the cap %d", d.len(), pointerCacheSize)
	}
}
