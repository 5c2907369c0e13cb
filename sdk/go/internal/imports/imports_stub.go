//go:build !wasip1

// Package imports holds the raw host imports of ABI v1; native builds get stubs.
package imports

import (
	"os"
	"strconv"
)

// LogSink receives every line in native builds, so tests can capture logs.
var LogSink = func(level int32, msg string) {
	os.Stderr.WriteString("mw log [" + strconv.Itoa(int(level)) + "] " + msg + "\n")
}

// Log hands one line to LogSink (native stand-in for the host's mw.log).
func Log(level int32, msg string) { LogSink(level, msg) }
