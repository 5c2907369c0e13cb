package mw

import (
	"slices"
	"strconv"
	"strings"
)

// Config is the stage's config table as decoded from msgpack. Values are nil, bool, int64,
// uint64 (only above MaxInt64), float64, string, []byte, []any or map[string]any.
//
// The getters return def when the key is absent and a *ConfigError when it holds the
// wrong type, so an init callback can refuse a bad config with one check per key.
type Config map[string]any

// ConfigError names a config key that is unknown or holds the wrong type.
type ConfigError struct {
	Key     string
	Problem string
}

func (e *ConfigError) Error() string {
	return "config key " + strconv.Quote(e.Key) + ": " + e.Problem
}

// CheckKeys refuses keys not in known (the first in sorted order), so that a typo in the
// stage's config fails at load instead of being silently ignored.
func (c Config) CheckKeys(known ...string) error {
	var unknown []string
	for k := range c {
		if !slices.Contains(known, k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	return &ConfigError{Key: slices.Min(unknown), Problem: "unknown key (known: " + strings.Join(known, ", ") + ")"}
}

// String returns the str at key.
func (c Config) String(key, def string) (string, error) {
	return get(c, key, def, "a string", func(v any) (string, bool) { s, ok := v.(string); return s, ok })
}

// Bool returns the bool at key.
func (c Config) Bool(key string, def bool) (bool, error) {
	return get(c, key, def, "a bool", func(v any) (bool, bool) { b, ok := v.(bool); return b, ok })
}

// Int returns the integer at key; floats are refused.
func (c Config) Int(key string, def int64) (int64, error) {
	return get(c, key, def, "an int64", func(v any) (int64, bool) { i, ok := v.(int64); return i, ok })
}

// Float returns the number at key; integers are converted.
func (c Config) Float(key string, def float64) (float64, error) {
	return get(c, key, def, "a number", toFloat)
}

// Strings returns the array of str at key (nil when absent).
func (c Config) Strings(key string) ([]string, error) {
	return get(c, key, nil, "an array of strings", toStrings)
}

// Map returns the table at key (nil when absent).
func (c Config) Map(key string) (Config, error) {
	return get(c, key, nil, "a table", func(v any) (Config, bool) { m, ok := v.(map[string]any); return m, ok })
}

func get[T any](c Config, key string, def T, want string, conv func(any) (T, bool)) (T, error) {
	v, ok := c[key]
	if !ok {
		return def, nil
	}
	t, ok := conv(v)
	if !ok {
		return def, &ConfigError{Key: key, Problem: "want " + want}
	}
	return t, nil
}

func toFloat(v any) (float64, bool) {
	switch n := v.(type) {
	case float64:
		return n, true
	case int64:
		return float64(n), true
	case uint64:
		return float64(n), true
	}
	return 0, false
}

func toStrings(v any) ([]string, bool) {
	items, ok := v.([]any)
	if !ok {
		return nil, false
	}
	out := make([]string, len(items))
	for i, item := range items {
		if out[i], ok = item.(string); !ok {
			return nil, false
		}
	}
	return out, true
}
