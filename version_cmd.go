package main

import (
	"context"
	"fmt"
)

// cmdVersion prints the build's version.
func cmdVersion(_ context.Context, e *env, _ []string) int {
	fmt.Fprintln(e.stdout, "passgate", version)
	return exitOK
}
