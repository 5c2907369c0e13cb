package main

import (
	"errors"
	"strconv"
	"strings"

	"mwhost/sdk"
)

// policy is the validated config.
type policy struct {
	origins     map[string]bool
	anyOrigin   bool
	methods     []string // as configured; GET, HEAD and POST are always allowed
	anyMethod   bool
	headers     map[string]bool // lower case
	anyHeader   bool
	expose      string // joined access-control-expose-headers value
	credentials bool
	maxAge      string // "" omits access-control-max-age
}

var defaultMethods = []string{"GET", "HEAD", "POST"}

func newPolicy(cfg mw.Config) (*policy, error) {
	err := cfg.CheckKeys("allowed_origins", "allowed_methods", "allowed_headers",
		"expose_headers", "allow_credentials", "max_age")
	if err != nil {
		return nil, err
	}
	origins, err := cfg.Strings("allowed_origins")
	if err != nil {
		return nil, err
	}
	if len(origins) == 0 {
		return nil, errors.New(`config key "allowed_origins" is required: a list of origins or ["*"]`)
	}
	p := &policy{origins: map[string]bool{}, headers: map[string]bool{}}
	if err := p.setOrigins(origins); err != nil {
		return nil, err
	}
	if err := p.setLists(cfg); err != nil {
		return nil, err
	}
	if p.credentials, err = cfg.Bool("allow_credentials", false); err != nil {
		return nil, err
	}
	return p, p.setMaxAge(cfg)
}

func (p *policy) setOrigins(origins []string) error {
	for _, o := range origins {
		if o == "*" {
			p.anyOrigin = true
			continue
		}
		scheme, host, ok := strings.Cut(o, "://")
		if !ok || scheme == "" || host == "" || strings.ContainsAny(host, "/?#") {
			return errors.New(`config key "allowed_origins": ` + strconv.Quote(o) +
				` is not an origin like "https://app.example" (no path, no trailing slash)`)
		}
		p.origins[strings.ToLower(o)] = true
	}
	return nil
}

func (p *policy) setLists(cfg mw.Config) error {
	methods, err := cfg.Strings("allowed_methods")
	if err != nil {
		return err
	}
	if methods == nil {
		methods = defaultMethods
	}
	headers, err := cfg.Strings("allowed_headers")
	if err != nil {
		return err
	}
	expose, err := cfg.Strings("expose_headers")
	if err != nil {
		return err
	}
	for _, m := range methods {
		p.anyMethod = p.anyMethod || m == "*"
	}
	p.methods = methods
	for _, h := range headers {
		p.anyHeader = p.anyHeader || h == "*"
		p.headers[strings.ToLower(h)] = true
	}
	p.expose = strings.Join(expose, ", ")
	return nil
}

func (p *policy) setMaxAge(cfg mw.Config) error {
	if _, ok := cfg["max_age"]; !ok {
		return nil // browsers then cache a preflight for 5 seconds
	}
	age, err := cfg.Int("max_age", 0)
	if err == nil && age < 0 {
		err = errors.New(`config key "max_age": want seconds >= 0`)
	}
	p.maxAge = strconv.FormatInt(age, 10)
	return err
}

func (p *policy) originAllowed(origin string) bool { return p.anyOrigin || p.origins[origin] }

// allowOrigin is the access-control-allow-origin value: "*" only when credentials are off,
// since browsers refuse a wildcard on credentialed requests.
func (p *policy) allowOrigin(origin string) string {
	if p.anyOrigin && !p.credentials {
		return "*"
	}
	return origin
}

func (p *policy) methodAllowed(method string) bool {
	if p.anyMethod || method == "GET" || method == "HEAD" || method == "POST" {
		return true
	}
	for _, m := range p.methods {
		if m == method {
			return true
		}
	}
	return false
}

// allowMethods echoes the requested method for a wildcard config (a literal "*" would mean
// nothing to a credentialed request) and lists the configured methods otherwise.
func (p *policy) allowMethods(requested string) string {
	if p.anyMethod {
		return requested
	}
	return strings.Join(p.methods, ", ")
}

func (p *policy) headersAllowed(names []string) bool {
	if p.anyHeader {
		return true
	}
	for _, name := range names {
		if !p.headers[name] {
			return false
		}
	}
	return true
}
