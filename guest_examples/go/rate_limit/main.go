// Command rate_limit is an mwhost middleware that limits each client to a token bucket:
// rate_per_s requests per second on average, bursts of up to burst requests, and 429 with
// retry-after beyond that.
//
// The buckets live in this instance's memory: the host keeps one instance per stage per
// worker thread, so every worker (and thread) counts on its own.
package main

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"time"

	"mwhost/sdk"
)

const (
	defaultRate    = 10
	defaultBurst   = 20
	defaultMaxKeys = 10000
)

// settings from the config; lim is rebuilt by configure.
var (
	keyHeader string
	lim       = newLimiter(defaultRate, defaultBurst, defaultMaxKeys, time.Now)
)

func init() {
	mw.HandleInit(configure)
	// kept, not lent (HandleRequestLent): the limiter keeps client keys across requests
	mw.HandleRequest(handle)
}

func main() {}

func configure(cfg mw.Config) error {
	if err := cfg.CheckKeys("rate_per_s", "burst", "key_header", "max_keys"); err != nil {
		return err
	}
	rate, err := cfg.Float("rate_per_s", defaultRate)
	if err != nil {
		return err
	}
	if !(rate > 0) || math.IsInf(rate, 0) {
		return errors.New(`config key "rate_per_s": want a number > 0`)
	}
	burst, err := atLeastOne(cfg, "burst", defaultBurst)
	if err != nil {
		return err
	}
	maxKeys, err := atLeastOne(cfg, "max_keys", defaultMaxKeys)
	if err != nil {
		return err
	}
	header, err := cfg.String("key_header", "")
	if err != nil {
		return err
	}
	keyHeader = strings.ToLower(header)
	lim = newLimiter(rate, float64(burst), int(maxKeys), time.Now)
	return nil
}

func atLeastOne(cfg mw.Config, key string, def int64) (int64, error) {
	n, err := cfg.Int(key, def)
	if err == nil && n < 1 {
		err = errors.New("config key " + strconv.Quote(key) + ": want an int >= 1")
	}
	return n, err
}

func handle(req *mw.Request) mw.Action {
	ok, wait := lim.allow(clientKey(req))
	if ok {
		return mw.Continue()
	}
	return mw.Respond(429).
		Header("retry-after", strconv.Itoa(wait)).
		Header("content-type", "text/plain").
		Text("rate limit exceeded\n")
}

// clientKey is the first address of key_header (e.g. x-forwarded-for) when configured and
// present, else the peer address.
func clientKey(req *mw.Request) string {
	if keyHeader != "" {
		first, _, _ := strings.Cut(req.Headers.Get(keyHeader), ",")
		if first = strings.TrimSpace(first); first != "" {
			return first
		}
	}
	return req.RemoteAddr
}
