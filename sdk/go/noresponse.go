//go:build mw_noresponse

package mw

// Package init runs before the middleware's init, so HandleResponse sees this.
func init() { responsePhase = false }
