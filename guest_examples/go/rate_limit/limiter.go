package main

import (
	"container/list"
	"math"
	"strings"
	"time"
)

// limiter keeps one token bucket per client key, at most maxKeys of them. Buckets are kept
// in least-recently-used order so the one to evict is always at the back.
type limiter struct {
	rate    float64 // tokens added per second
	burst   float64 // bucket capacity
	maxKeys int
	now     func() time.Time
	buckets map[string]*list.Element
	lru     *list.List // of *bucket, most recently used first
}

type bucket struct {
	key    string
	tokens float64
	last   time.Time
}

// pruneBudget bounds the stale buckets dropped per request, keeping each call short.
const pruneBudget = 2

func newLimiter(rate, burst float64, maxKeys int, now func() time.Time) *limiter {
	return &limiter{rate: rate, burst: burst, maxKeys: maxKeys, now: now,
		buckets: map[string]*list.Element{}, lru: list.New()}
}

// allow takes a token from key's bucket; when there is none it returns the whole seconds
// until there will be one.
func (l *limiter) allow(key string) (ok bool, retryAfter int) {
	now := l.now()
	b := l.bucket(key, now)
	b.tokens = l.refilled(b, now)
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	wait := math.Ceil((1 - b.tokens) / l.rate)
	return false, int(math.Min(math.Max(wait, 1), maxRetryAfter))
}

// maxRetryAfter keeps a tiny rate from overflowing the header value.
const maxRetryAfter = 1 << 30

// refilled is b's token count at now.
func (l *limiter) refilled(b *bucket, now time.Time) float64 {
	elapsed := max(0, now.Sub(b.last).Seconds())
	return math.Min(l.burst, b.tokens+elapsed*l.rate)
}

// bucket finds or creates key's bucket and marks it most recently used.
func (l *limiter) bucket(key string, now time.Time) *bucket {
	if e, ok := l.buckets[key]; ok {
		l.lru.MoveToFront(e)
		return e.Value.(*bucket)
	}
	l.prune(now)
	if l.lru.Len() >= l.maxKeys {
		l.remove(l.lru.Back()) // the least recently seen client starts afresh next time
	}
	key = strings.Clone(key) // a request's strings share its message: keep only the key
	b := &bucket{key: key, tokens: l.burst, last: now}
	l.buckets[key] = l.lru.PushFront(b)
	return b
}

// prune drops buckets that have refilled completely: a new bucket would be identical.
func (l *limiter) prune(now time.Time) {
	for range pruneBudget {
		e := l.lru.Back()
		if e == nil {
			return
		}
		if l.refilled(e.Value.(*bucket), now) < l.burst {
			return
		}
		l.remove(e)
	}
}

func (l *limiter) remove(e *list.Element) {
	delete(l.buckets, l.lru.Remove(e).(*bucket).key)
}
