// Command add_header_go is the Go twin of the Rust add_header example: it sets request
// headers and response headers from its config, in one guest call per request.
package main

import (
	"fmt"
	"sort"

	"mwhost/sdk"
)

// action is built once at init: the answer is the same for every request.
var action = mw.Continue()

func init() {
	mw.HandleInit(configure)
	// lent: the callback reads nothing of the request, so none of it needs fresh memory
	mw.HandleRequestLent(func(*mw.Request) mw.Action { return action })
}

func main() {}

func configure(cfg mw.Config) error {
	if err := cfg.CheckKeys("request_headers", "response_headers"); err != nil {
		return err
	}
	request, err := headerTable(cfg, "request_headers")
	if err != nil {
		return err
	}
	response, err := headerTable(cfg, "response_headers")
	if err != nil {
		return err
	}
	action = build(request, response)
	return nil
}

// build turns the two tables into one continue action (names sorted for stable output).
func build(request, response map[string]string) mw.Action {
	a := mw.Continue()
	for _, name := range sortedKeys(request) {
		a = a.SetHeader(name, request[name])
	}
	for _, name := range sortedKeys(response) {
		a = a.SetResponseHeader(name, response[name])
	}
	return a
}

func headerTable(cfg mw.Config, key string) (map[string]string, error) {
	table, err := cfg.Map(key)
	if err != nil || table == nil {
		return nil, err
	}
	out := make(map[string]string, len(table))
	for name := range table {
		value, err := table.String(name, "")
		if err != nil {
			return nil, fmt.Errorf("config key %q: %w", key, err)
		}
		out[name] = value
	}
	return out, nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
