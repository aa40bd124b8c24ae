package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"passgate/store"
)

// cmdDevice manages the scanner devices that post to the scan API.
func cmdDevice(ctx context.Context, e *env, args []string) int {
	if len(args) == 0 {
		return e.usageError("device", "want a subcommand: add NAME, list or revoke NAME")
	}
	switch args[0] {
	case "add":
		return cmdDeviceAdd(ctx, e, args[1:])
	case "revoke":
		return cmdDeviceRevoke(ctx, e, args[1:])
	case "list":
		return cmdDeviceList(ctx, e, args[1:])
	}
	return e.usageError("device", "unknown subcommand %q (want add, list or revoke)", args[0])
}

// deviceStore parses a device subcommand's flags (with nameArg, its one
// argument, the device name) and opens the store; db is nil when the
// command ends with code.
func (e *env) deviceStore(ctx context.Context, sub string, args []string, nameArg bool) (db *store.DB, name string, code int) {
	fs, data := e.newFlags("device "+sub, "")
	if ok, code := parse(fs, args); !ok {
		return nil, "", code
	}
	if nameArg && fs.NArg() != 1 {
		return nil, "", e.usageError("device "+sub, "give the device name")
	}
	db, err := e.openDB(ctx, *data, e.stderr)
	if err != nil {
		return nil, "", e.fail(err)
	}
	return db, fs.Arg(0), exitOK
}

// cmdDeviceAdd registers a device and prints its API token once.
func cmdDeviceAdd(ctx context.Context, e *env, args []string) int {
	db, arg, code := e.deviceStore(ctx, "add", args, true)
	if db == nil {
		return code
	}
	defer db.Close()
	name := strings.TrimSpace(arg)
	if name == "" || len(name) > 64 {
		return e.usageError("device add", "a device name has 1 to 64 characters")
	}
	_, token, err := db.CreateDevice(ctx, name, cliActor())
	if errors.Is(err, store.ErrConflict) {
		return e.usageError("device add", "a device named %q exists already", name)
	}
	if err != nil {
		return e.fail(err)
	}
	fmt.Fprintln(e.stdout, token)
	return exitOK
}

// cmdDeviceRevoke revokes a device's token.
func cmdDeviceRevoke(ctx context.Context, e *env, args []string) int {
	db, name, code := e.deviceStore(ctx, "revoke", args, true)
	if db == nil {
		return code
	}
	defer db.Close()
	if err := db.RevokeDevice(ctx, name, cliActor()); errors.Is(err, store.ErrNotFound) {
		return e.usageError("device revoke", "no active device named %q", name)
	} else if err != nil {
		return e.fail(err)
	}
	fmt.Fprintf(e.stdout, "device %q revoked\n", name)
	return exitOK
}

// cmdDeviceList lists the devices, revoked ones too.
func cmdDeviceList(ctx context.Context, e *env, args []string) int {
	db, _, code := e.deviceStore(ctx, "list", args, false)
	if db == nil {
		return code
	}
	defer db.Close()
	devs, err := db.FindDevices(ctx)
	if err != nil {
		return e.fail(err)
	}
	for _, d := range devs {
		state := "active"
		if !d.RevokedAt.IsZero() {
			state = "revoked " + d.RevokedAt.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(e.stdout, "%s\t%s\t%s\n", d.Name, d.CreatedAt.UTC().Format(time.RFC3339), state)
	}
	return exitOK
}
