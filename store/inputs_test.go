package store_test

import (
	"errors"
	"testing"

	"passgate/store"
)

func TestDB_Inputs(t *testing.T) {
	t.Parallel()
	db := MustOpenDB(t)
	in := &store.Input{Name: "gate-1", Kind: "serial", Spec: "/dev/ttyACM0,baud=9600", Actor: "admin"}
	t.Run("OK", func(t *testing.T) {
		if err := db.CreateInput(t.Context(), in); err != nil {
			t.Fatal(err)
		}
		if err := db.CreateInput(t.Context(), &store.Input{Name: "kiosk-1", Kind: "evdev", Spec: "/dev/input/event3", Actor: "admin"}); err != nil {
			t.Fatal(err)
		}
		list, err := db.FindInputs(t.Context())
		if err != nil || len(list) != 2 || list[0].Name != "gate-1" || list[0].Spec != in.Spec || list[1].Kind != "evdev" {
			t.Fatalf("inputs %+v %v", list, err)
		}
	})
	t.Run("ErrConflict", func(t *testing.T) {
		if err := db.CreateInput(t.Context(), in); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("ErrInvalid", func(t *testing.T) {
		for _, bad := range []*store.Input{
			{Name: "", Kind: "serial", Spec: "/dev/x", Actor: "a"},
			{Name: "x", Kind: "usb", Spec: "/dev/x", Actor: "a"},
			{Name: "x", Kind: "serial", Spec: "", Actor: "a"},
			{Name: "x", Kind: "serial", Spec: "/dev/x"},
		} {
			if err := db.CreateInput(t.Context(), bad); err == nil {
				t.Errorf("created %+v", bad)
			}
		}
	})
	t.Run("Delete", func(t *testing.T) {
		if err := db.DeleteInput(t.Context(), "gate-1"); err != nil {
			t.Fatal(err)
		}
		if err := db.DeleteInput(t.Context(), "gate-1"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("second delete: %v", err)
		}
		if list, _ := db.FindInputs(t.Context()); len(list) != 1 {
			t.Fatalf("%d inputs left, want 1", len(list))
		}
	})
}
