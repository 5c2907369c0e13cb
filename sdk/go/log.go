package mw

import "mwhost/sdk/internal/imports"

// Level is a log level of the host's mw.log import.
type Level int32

const (
	LevelDebug Level = 0
	LevelInfo  Level = 1
	LevelWarn  Level = 2
	LevelError Level = 3
)

// Log sends one line to the host log, attributed to this stage. The host drops lines over
// its per-call budget. Writes to os.Stdout and os.Stderr also reach the host log (as info
// and warning lines).
func Log(level Level, msg string) { imports.Log(int32(level), msg) }

// Debug logs msg at debug level.
func Debug(msg string) { Log(LevelDebug, msg) }

// Info logs msg at info level.
func Info(msg string) { Log(LevelInfo, msg) }

// Warn logs msg at warning level.
func Warn(msg string) { Log(LevelWarn, msg) }

// Error logs msg at error level.
func Error(msg string) { Log(LevelError, msg) }
