package session

import (
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/internal/policy"
)

func TestStateMachine(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	p := policy.Policy{Idle: 10 * time.Minute, Absolute: time.Hour}
	r := New("h", t0, t0, p)
	if st := r.Touch(t0.Add(9*time.Minute), p, false, 0); st != Active {
		t.Fatalf("got %s", st)
	}
	if st := r.Touch(t0.Add(18*time.Minute), p, true, 0); st != Active || !r.LastSeen.Equal(t0.Add(9*time.Minute)) {
		t.Fatalf("passive moved last seen: %s %s", st, r.LastSeen)
	}
	if st := r.Touch(t0.Add(19*time.Minute), p, false, 0); st != ExpiredIdle {
		t.Fatalf("got %s, want idle", st)
	}
	if st := r.State(t0.Add(19*time.Minute), policy.Policy{Idle: time.Hour, Absolute: 2 * time.Hour}); st != ExpiredIdle {
		t.Fatalf("ended state not final: %s", st)
	}
	r2 := New("h", t0, t0, p)
	for m := 5; m < 60; m += 5 {
		r2.Touch(t0.Add(time.Duration(m)*time.Minute), p, false, 0)
	}
	if st := r2.Touch(t0.Add(time.Hour), p, false, 0); st != ExpiredAbsolute {
		t.Fatalf("got %s, want absolute", st)
	}
	if r3 := New("h", t0.Add(time.Hour), t0, p); !r3.LoginAt.Equal(t0) {
		t.Fatal("future login not clamped to now")
	}
}

func TestTouchCoalescing(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	p := policy.Policy{Idle: 10 * time.Minute, Absolute: time.Hour}
	r := New("h", t0, t0, p)
	// Inside the interval: last seen stays, the idle deadline trails.
	if st := r.Touch(t0.Add(999*time.Millisecond), p, false, time.Second); st != Active || !r.LastSeen.Equal(t0) {
		t.Fatalf("coalesced touch moved last seen: %s %s", st, r.LastSeen)
	}
	// At the interval: it moves.
	if r.Touch(t0.Add(time.Second), p, false, time.Second); !r.LastSeen.Equal(t0.Add(time.Second)) {
		t.Fatalf("touch at the interval did not move last seen: %s", r.LastSeen)
	}
	// Coalescing never keeps a session alive: the deadline is from the
	// last written touch.
	if st := r.Touch(t0.Add(time.Second+10*time.Minute), p, false, time.Second); st != ExpiredIdle {
		t.Fatalf("got %s, want idle", st)
	}
	// The interval is capped at a quarter of the idle timeout: a record
	// with idle 1m under touch_interval 5m still moves every 15s.
	short := policy.Policy{Idle: time.Minute, Absolute: time.Hour}
	r3 := New("h", t0, t0, short)
	if r3.Touch(t0.Add(15*time.Second), short, false, 5*time.Minute); !r3.LastSeen.Equal(t0.Add(15 * time.Second)) {
		t.Fatalf("interval not capped at idle/4: last seen %s", r3.LastSeen)
	}
	// Zero and negative intervals move it on every later request.
	r2 := New("h", t0, t0, p)
	for _, every := range []time.Duration{0, -time.Second} {
		at := r2.LastSeen.Add(time.Millisecond)
		if r2.Touch(at, p, false, every); !r2.LastSeen.Equal(at) {
			t.Fatalf("every=%s: last seen %s, want %s", every, r2.LastSeen, at)
		}
	}
}

func TestStatusNames(t *testing.T) {
	for _, s := range []Status{Active, ExpiredIdle, ExpiredAbsolute, Revoked} {
		if ParseStatus(s.String()) != s {
			t.Fatalf("round trip of %s", s)
		}
	}
	if ParseStatus("garbage") != Revoked {
		t.Fatal("unknown state must read as revoked")
	}
}

func TestHashAndCutoff(t *testing.T) {
	h := HashID("session-1")
	if !LooksLikeHash(h) || h == HashID("session-2") || LooksLikeHash("session-1") || LooksLikeHash(h[:21]+"!") {
		t.Fatalf("hash %q", h)
	}
	// millisecond precision: a login earlier in the same second is cut off
	c := time.Unix(100, 500e6)
	if !Before(time.Unix(100, 0), c) || !Before(time.Unix(100, 499e6), c) || Before(time.Unix(100, 500e6), c) ||
		Before(time.Unix(100, 501e6), c) || !Before(time.Unix(99, 0), c) || Before(time.Unix(1, 0), time.Time{}) {
		t.Fatal("cutoff comparison")
	}
}

// Unbound is only ever reported, never stored: its name is not one
// ParseStatus reads back as active.
func TestUnboundStatus(t *testing.T) {
	if Unbound.String() != "unbound" {
		t.Fatalf("Unbound.String() = %q", Unbound.String())
	}
	if st := ParseStatus(Unbound.String()); st == Active {
		t.Fatal("a stored \"unbound\" would read back as active")
	}
}
