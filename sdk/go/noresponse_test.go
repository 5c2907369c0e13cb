//go:build mw_noresponse

package mw

import "testing"

// Without a response phase, registering a response callback fails loudly at init.
func TestHandleResponseWithoutPhase(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("HandleResponse did not panic")
		}
	}()
	HandleResponse(func(*Response) ResponseAction { return Unchanged() })
}
