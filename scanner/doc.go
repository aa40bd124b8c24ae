// Package scanner reads the gate's input devices: keyboard-wedge scanners
// through evdev, serial scanners, and camera frames, each turned into
// lines of text for the check (package check). It knows devices, not
// passes: framing, key codes and layouts, reconnects and QR decoding.
package scanner
