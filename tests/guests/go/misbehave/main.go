// Command misbehave is a test guest: a Go middleware that misbehaves on purpose, by path.
//
//	/print  writes three lines to stdout and two to stderr, then continues
//	/flood  writes 1 MiB to stdout, then continues
//	/panic  panics (the Go runtime prints the panic to stderr and exits)
//	/oom    allocates far beyond any sane memory limit (fatal error: out of memory)
//	/sleep  sleeps 45 s (time.Sleep: WASI poll_oneoff with a relative clock)
//	/nap    sleeps 5 ms, then continues with ctx "slept" = "5ms"
//	/stdin  reads stdin to its end, then continues with ctx "stdin" = the byte count
//	other   continues, with ctx "go" = "ok"
package main

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"mwhost/sdk"
)

var sink [][]byte

func init() {
	mw.HandleRequest(handle)
}

func main() {}

func handle(req *mw.Request) mw.Action {
	switch req.Path {
	case "/print":
		for i := 1; i <= 3; i++ {
			fmt.Printf("stdout line %d\n", i)
		}
		fmt.Fprintln(os.Stderr, "stderr line 1")
		fmt.Fprintln(os.Stderr, "stderr line 2")
	case "/flood":
		line := strings.Repeat("x", 1023) + "\n"
		for i := 0; i < 1024; i++ {
			fmt.Print(line)
		}
	case "/panic":
		panic("misbehave: deliberate panic")
	case "/oom":
		for i := 0; i < 64; i++ {
			sink = append(sink, make([]byte, 64<<20))
		}
	case "/sleep":
		time.Sleep(45 * time.Second)
	case "/nap":
		time.Sleep(5 * time.Millisecond)
		return mw.Continue().SetCtx("slept", "5ms")
	case "/stdin":
		data, err := io.ReadAll(os.Stdin)
		if err != nil {
			return mw.Continue().SetCtx("stdin", "error: "+err.Error())
		}
		return mw.Continue().SetCtx("stdin", strconv.Itoa(len(data)))
	}
	return mw.Continue().SetCtx("go", "ok")
}
