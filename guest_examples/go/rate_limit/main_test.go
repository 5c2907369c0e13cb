package main

import (
	"testing"
	"time"

	"mwhost/sdk"
)

// clock is a manual time source for the limiter.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newTestLimiter(rate, burst float64, maxKeys int) (*limiter, *clock) {
	c := &clock{t: time.Unix(1000, 0)}
	return newLimiter(rate, burst, maxKeys, c.now), c
}

// A full bucket admits burst requests at once, then refuses until tokens refill.
func TestBurstThenRefill(t *testing.T) {
	l, c := newTestLimiter(2, 3, 10)
	for i := range 3 {
		if ok, _ := l.allow("a"); !ok {
			t.Fatalf("request %d refused", i)
		}
	}
	if ok, wait := l.allow("a"); ok || wait != 1 {
		t.Fatalf("4th: ok=%v wait=%d", ok, wait)
	}
	c.advance(500 * time.Millisecond) // +1 token at 2/s
	if ok, _ := l.allow("a"); !ok {
		t.Fatal("refused after refill")
	}
	c.advance(time.Hour)
	for range 3 {
		if ok, _ := l.allow("a"); !ok {
			t.Fatal("bucket did not refill to burst")
		}
	}
	if ok, _ := l.allow("a"); ok {
		t.Fatal("bucket exceeded burst")
	}
}

// retry-after is the whole number of seconds until the next token, rounded up.
func TestRetryAfterCeil(t *testing.T) {
	l, c := newTestLimiter(0.25, 1, 10) // one token per 4 s
	l.allow("a")
	if _, wait := l.allow("a"); wait != 4 {
		t.Errorf("wait %d, want 4", wait)
	}
	c.advance(1500 * time.Millisecond)
	if _, wait := l.allow("a"); wait != 3 { // 2.5 s left
		t.Errorf("wait %d, want 3", wait)
	}
}

// Each client has its own bucket.
func TestPerClient(t *testing.T) {
	l, _ := newTestLimiter(1, 1, 10)
	if ok, _ := l.allow("a"); !ok {
		t.Fatal("a refused")
	}
	if ok, _ := l.allow("b"); !ok {
		t.Fatal("b refused because of a")
	}
}

// Beyond maxKeys the least recently seen client is evicted.
func TestEvictsOldest(t *testing.T) {
	l, _ := newTestLimiter(1, 1, 2)
	l.allow("a")
	l.allow("b")
	l.allow("a") // a is now more recent than b (and refused)
	l.allow("c") // evicts b
	if len(l.buckets) != 2 || l.buckets["b"] != nil || l.buckets["a"] == nil {
		t.Fatalf("buckets: %v", keys(l))
	}
	if ok, _ := l.allow("b"); !ok { // b starts afresh
		t.Error("evicted client not reset")
	}
}

// Buckets that have refilled completely are dropped as new clients arrive.
func TestPrunesStale(t *testing.T) {
	l, c := newTestLimiter(10, 5, 100)
	l.allow("a")
	l.allow("b")
	c.advance(time.Second)
	l.allow("c")
	if len(l.buckets) != 1 || l.buckets["c"] == nil {
		t.Errorf("buckets: %v", keys(l))
	}
}

func keys(l *limiter) []string {
	var ks []string
	for k := range l.buckets {
		ks = append(ks, k)
	}
	return ks
}

func configured(t *testing.T, cfg mw.Config) {
	t.Helper()
	oldLim, oldHeader := lim, keyHeader
	t.Cleanup(func() { lim, keyHeader = oldLim, oldHeader })
	if err := configure(cfg); err != nil {
		t.Fatal(err)
	}
}

// Over the limit the request is answered 429 with retry-after and a short body.
func TestHandle429(t *testing.T) {
	configured(t, mw.Config{"rate_per_s": int64(1), "burst": int64(1)})
	req := &mw.Request{RemoteAddr: "192.0.2.1"}
	if a := handle(req); a.Kind != mw.ActionContinue {
		t.Fatalf("first: %+v", a)
	}
	a := handle(req)
	if a.Status != 429 || a.Headers.Get("retry-after") != "1" || len(a.Body) == 0 {
		t.Errorf("second: %d %v %q", a.Status, a.Headers, a.Body)
	}
}

// key_header picks the first forwarded address; without it the peer address is used.
func TestClientKey(t *testing.T) {
	configured(t, mw.Config{"key_header": "X-Forwarded-For"})
	req := &mw.Request{RemoteAddr: "10.0.0.9", Headers: mw.Headers{{"x-forwarded-for", " 203.0.113.5 , 10.0.0.1"}}}
	if got := clientKey(req); got != "203.0.113.5" {
		t.Errorf("got %q", got)
	}
	req.Headers = nil
	if got := clientKey(req); got != "10.0.0.9" {
		t.Errorf("fallback: %q", got)
	}
}

// Bad values are refused and nothing changes.
func TestBadConfig(t *testing.T) {
	for i, cfg := range []mw.Config{
		{"rate_per_s": int64(0)}, {"rate_per_s": -1.5}, {"rate_per_s": "10"},
		{"burst": int64(0)}, {"burst": 2.5}, {"max_keys": int64(0)}, {"key_header": int64(1)},
		{"rate": int64(1)},
	} {
		if err := configure(cfg); err == nil {
			t.Errorf("config %d %v accepted", i, cfg)
		}
	}
	configured(t, mw.Config{"rate_per_s": 0.5, "burst": int64(3), "max_keys": int64(7)})
	if lim.rate != 0.5 || lim.burst != 3 || lim.maxKeys != 7 {
		t.Errorf("limiter %+v", lim)
	}
}
